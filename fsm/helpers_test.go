package fsm

import (
	"bytes"
	"errors"
	"io"

	"github.com/hashicorp/raft"
)

// Shared helpers for the fsm tests and benchmarks. Commands go through
// Encode and Machine.Apply (not ApplyCommand) wherever possible, so every
// test also exercises the log form a real node replays.

// tok makes a distinct, non-zero token from a small number.
func tok(n byte) Token {
	var t Token
	for i := range t {
		t[i] = n
	}
	return t
}

func acq(stamp int64, name string, t byte, life int64) Command {
	return Command{Kind: KindAcquire, Stamp: stamp, Name: name, Token: tok(t), Lifetime: life, Owner: "owner-" + name}
}

func rel(stamp int64, name string, t byte) Command {
	return Command{Kind: KindRelease, Stamp: stamp, Name: name, Token: tok(t)}
}

func ref(stamp int64, name string, t byte, life int64) Command {
	return Command{Kind: KindRefresh, Stamp: stamp, Name: name, Token: tok(t), Lifetime: life}
}

func tick(stamp int64) Command { return Command{Kind: KindTick, Stamp: stamp} }

func announce(stamp int64, node, url string) Command {
	return Command{Kind: KindAnnounce, Stamp: stamp, NodeID: node, APIURL: url}
}

// withID sets the client request id (acquire, release, refresh only: the
// other kinds do not carry one in their log form).
func withID(c Command, id string) Command {
	c.RequestID = id
	return c
}

// fataler is the part of testing.TB the helpers need; *rapid.T has it
// too, so property tests share them.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// rig drives one Machine through raft.Logs with consecutive indexes,
// starting at 1, the way Raft would.
type rig struct {
	tb  fataler
	m   *Machine
	idx uint64
}

func newRig(tb fataler) *rig { return &rig{tb: tb, m: New(Options{})} }

func logFor(index uint64, c Command) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: c.Encode()}
}

func (r *rig) do(c Command) Result {
	r.tb.Helper()
	r.idx++
	out, ok := r.m.Apply(logFor(r.idx, c)).(Result)
	if !ok {
		r.tb.Fatalf("Apply(%v) did not return a Result", c.Kind)
	}
	return out
}

// advanceTo ticks until the lease clock reaches target; one tick moves it
// at most MaxClockStep, so long advances take several.
func (r *rig) advanceTo(target int64) {
	r.tb.Helper()
	for r.m.Now() < target {
		r.do(tick(target))
	}
}

// memSink is a raft.SnapshotSink that keeps the snapshot in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// countSink discards the snapshot but counts its bytes, so benchmarks
// measure encoding rather than buffer growth.
type countSink struct{ n int64 }

func (s *countSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countSink) ID() string                  { return "count" }
func (s *countSink) Close() error                { return nil }
func (s *countSink) Cancel() error               { return nil }

// snapshotBytes runs the raft path: Snapshot, then Persist into a sink.
func snapshotBytes(tb fataler, m *Machine) []byte {
	tb.Helper()
	snap, err := m.Snapshot()
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		tb.Fatalf("Persist left sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// closeTracker records whether Restore closed its reader, as raft expects.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func restoreFrom(tb fataler, data []byte) *Machine {
	tb.Helper()
	m := New(Options{})
	if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		tb.Fatalf("Restore: %v", err)
	}
	return m
}

func stateBytes(tb fataler, m *Machine) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := m.WriteSnapshot(&buf); err != nil {
		tb.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

var errBoom = errors.New("boom")

// failReader returns some bytes and then an I/O error.
type failReader struct{ data []byte }

func (f *failReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errBoom
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}
