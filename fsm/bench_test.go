package fsm

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

// The goals these benchmarks check (issue): Persist and Restore of 1M
// locks each under 2 s, and under 300 bytes of memory per lock beyond its
// name. Everything with 1M locks runs only under -bench.

const (
	millionLocks = 1_000_000
	benchStamp   = 1000
	benchLife    = 1 << 40 // nothing expires while a benchmark runs
)

func benchName(i int) string { return fmt.Sprintf("lock-%07d", i) }

// fill grants n locks named lock-0000000... through ApplyCommand; the log
// encoding is benchmarked separately. Owner is left empty so the figure
// is the lock's own cost.
func fill(m *Machine, n int) {
	for i := 0; i < n; i++ {
		m.ApplyCommand(uint64(i+1), Command{Kind: KindAcquire, Stamp: benchStamp, Name: benchName(i), Token: tok(byte(i)), Lifetime: benchLife})
	}
}

// million is one shared machine with 1M held locks and its snapshot, built
// once: building it takes longer than most of what is measured.
var million struct {
	once sync.Once
	m    *Machine
	snap []byte
}

func millionMachine(b *testing.B) (*Machine, []byte) {
	million.once.Do(func() {
		million.m = New(Options{})
		fill(million.m, millionLocks)
		million.snap = snapshotBytes(b, million.m)
	})
	return million.m, million.snap
}

func BenchmarkApplyAcquireRelease(b *testing.B) {
	for _, held := range []int{0, millionLocks} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			m := New(Options{})
			if held > 0 {
				m, _ = millionMachine(b)
			}
			benchAcquireRelease(b, m)
		})
	}
}

// benchAcquireRelease applies pre-encoded acquire/release pairs through
// Machine.Apply, as Raft does; one op is one pair.
func benchAcquireRelease(b *testing.B, m *Machine) {
	acquire := &raft.Log{Type: raft.LogCommand, Data: Command{Kind: KindAcquire, Stamp: benchStamp, Name: "bench/lock", Token: tok(7), Lifetime: 30_000, Owner: "bench"}.Encode()}
	release := &raft.Log{Type: raft.LogCommand, Data: Command{Kind: KindRelease, Stamp: benchStamp, Name: "bench/lock", Token: tok(7)}.Encode()}
	idx := m.AppliedIndex()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		idx++
		acquire.Index = idx
		if r := m.Apply(acquire).(Result); r.Outcome != Granted {
			b.Fatalf("acquire: %v", r.Outcome)
		}
		idx++
		release.Index = idx
		if r := m.Apply(release).(Result); r.Outcome != Released {
			b.Fatalf("release: %v", r.Outcome)
		}
	}
}

// BenchmarkSnapshot1M times what Raft does to take a snapshot: freeze the
// state, then Persist it to a sink (one that only counts bytes).
func BenchmarkSnapshot1M(b *testing.B) {
	m, _ := millionMachine(b)
	var n int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap, err := m.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		sink := &countSink{}
		if err := snap.Persist(sink); err != nil {
			b.Fatal(err)
		}
		snap.Release()
		n = sink.n
	}
	b.ReportMetric(float64(n), "bytes")
}

func BenchmarkRestore1M(b *testing.B) {
	_, data := millionMachine(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := New(Options{})
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			b.Fatal(err)
		}
		if m.Len() != millionLocks {
			b.Fatalf("restored %d locks", m.Len())
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerLock1M reports the live heap one held lock costs
// beyond its name's bytes (B/lock), for a machine built by applying grants
// and for one restored from a snapshot. The time per op is not the point.
func BenchmarkMemoryPerLock1M(b *testing.B) {
	_, data := millionMachine(b)
	nameBytes := uint64(millionLocks * len(benchName(0)))
	build := map[string]func() *Machine{
		"applied": func() *Machine { m := New(Options{}); fill(m, millionLocks); return m },
		"restored": func() *Machine {
			m := New(Options{})
			if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
				b.Fatal(err)
			}
			return m
		},
	}
	for _, how := range []string{"applied", "restored"} {
		b.Run(how, func(b *testing.B) {
			var perLock float64
			for i := 0; i < b.N; i++ {
				before := heapAlloc()
				m := build[how]()
				after := heapAlloc()
				perLock = (float64(after) - float64(before) - float64(nameBytes)) / millionLocks
				runtime.KeepAlive(m)
			}
			b.ReportMetric(perLock, "B/lock")
		})
	}
}
