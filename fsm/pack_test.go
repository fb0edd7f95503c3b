package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"
)

func packedLog(index uint64, cmds ...Command) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: EncodeEntry(cmds)}
}

func TestEntryRoundTripKeepsSingleCommandForm(t *testing.T) {
	one := acq(5, "a", 1, 10)
	if !bytes.Equal(EncodeEntry([]Command{one}), one.Encode()) {
		t.Fatal("a lone command must keep the single-command log form")
	}
	cmds := []Command{withID(rel(5, "a", 1), "r1"), acq(5, "a", 2, 10), tick(5)}
	got, packed, err := DecodeEntry(EncodeEntry(cmds))
	if err != nil || !packed || !reflect.DeepEqual(got, cmds) {
		t.Fatalf("DecodeEntry = %+v, %v, %v", got, packed, err)
	}
}

func TestDecodeEntryRejectsBadPacks(t *testing.T) {
	good := EncodeEntry([]Command{tick(1), tick(2)})
	count := func(n uint64) []byte { return binary.AppendUvarint([]byte{packedMarker}, n) }
	nested := append(count(2), byte(len(good)))
	nested = append(nested, good...)
	cases := map[string][]byte{
		"truncated":  good[:len(good)-1],
		"trailing":   append(append([]byte{}, good...), 0),
		"one":        append(count(1), good[2:]...),
		"huge count": count(1 << 40),
		"nested":     nested,
	}
	for name, data := range cases {
		if _, _, err := DecodeEntry(data); !errors.Is(err, ErrUndecodable) {
			t.Errorf("%s: err %v, want ErrUndecodable", name, err)
		}
	}
}

func TestUndecodablePackedEntryPanics(t *testing.T) {
	m := New(Options{})
	defer func() {
		if recover() == nil {
			t.Error("an undecodable packed entry was skipped instead of stopping the node")
		}
	}()
	data := EncodeEntry([]Command{tick(1), tick(2)})
	m.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data[:len(data)-1]})
}

// A packed entry answers each command with its own Result, in order: a
// release and the grant to the next waiter share the entry's index, and
// grants in one entry get consecutive fences above every earlier one.
func TestPackedEntryResultsAndFences(t *testing.T) {
	m := New(Options{})
	m.Apply(logFor(1, acq(10, "a", 1, 1000)))
	out, ok := m.Apply(packedLog(2,
		rel(20, "a", 1), acq(20, "a", 2, 1000), acq(20, "b", 3, 1000), acq(20, "a", 4, 1000),
	)).(Results)
	if !ok || len(out) != 4 {
		t.Fatalf("packed Apply = %#v", out)
	}
	if out[0].Outcome != Released || out[1].Outcome != Granted || out[2].Outcome != Granted || out[3].Outcome != Busy {
		t.Fatalf("outcomes %v %v %v %v", out[0].Outcome, out[1].Outcome, out[2].Outcome, out[3].Outcome)
	}
	for i, r := range out {
		if r.Index != 2 {
			t.Errorf("result %d index %d, want the entry's 2", i, r.Index)
		}
	}
	if out[1].Lock.Fence != 2 || out[2].Lock.Fence != 3 {
		t.Errorf("fences %d, %d; want 2, 3", out[1].Lock.Fence, out[2].Lock.Fence)
	}
	// The next entry's grant must still exceed the fences already issued.
	if r := m.Apply(logFor(3, acq(30, "c", 5, 1000))).(Result); r.Lock.Fence != 4 {
		t.Errorf("grant after a packed entry fenced %d, want 4", r.Lock.Fence)
	}
	// A snapshot carries the last fence.
	r2 := restoreFrom(t, snapshotBytes(t, m))
	if r := r2.Apply(logFor(4, acq(40, "d", 6, 1000))).(Result); r.Lock.Fence != 5 {
		t.Errorf("grant after a restore fenced %d, want 5", r.Lock.Fence)
	}
}

// A version 1 snapshot (fences were indexes) restores with the applied
// index as the last fence, so tokens keep increasing across an upgrade.
func TestVersion1SnapshotRestores(t *testing.T) {
	b := []byte(snapshotMagicV1)
	b = binary.AppendUvarint(b, 40) // applied
	b = binary.AppendVarint(b, 100) // leaseNow
	b = binary.AppendUvarint(b, 0)  // nodes
	b = binary.AppendUvarint(b, 1)  // locks
	b = appendLock(b, &Lock{Name: "a", Token: tok(1), Fence: 39, Deadline: 9000})
	b = binary.AppendUvarint(b, 1) // dedup
	b = appendString(b, dedupKey(withID(acq(0, "a", 1, 0), "rid")))
	b = binary.AppendVarint(b, 50_000)
	b = append(b, byte(Granted))
	b = binary.AppendUvarint(b, 39)
	b = binary.AppendVarint(b, 90) // Now
	b = appendLock(b, &Lock{Name: "a", Token: tok(1), Fence: 39, Deadline: 9000})
	m := restoreFrom(t, b)
	if r := m.Apply(packedLog(41, acq(200, "b", 2, 10), acq(200, "c", 3, 10))).(Results); r[0].Lock.Fence != 41 || r[1].Lock.Fence != 42 {
		t.Errorf("fences after a v1 restore: %d, %d", r[0].Lock.Fence, r[1].Lock.Fence)
	}
	if r := m.Apply(logFor(42, withID(acq(300, "a", 9, 10), "rid"))).(Result); !r.Duplicate || r.Outcome != Granted || r.Lock.Token != tok(1) {
		t.Errorf("v1 dedup entry not honoured: %+v", r)
	}
}

// drawPack draws one entry's commands, all with the entry's stamp, as the
// proposer packs them.
func drawPack(t *rapid.T, clock *int64) []Command {
	n := rapid.IntRange(1, 6).Draw(t, "packSize")
	first := drawCommand(t, clock)
	cmds := []Command{first}
	for len(cmds) < n {
		c := drawCommand(t, clock)
		c.Stamp = first.Stamp
		cmds = append(cmds, c)
	}
	return cmds
}

func resultsOf(t *rapid.T, v interface{}, n int) []Result {
	switch r := v.(type) {
	case Result:
		if n == 1 {
			return []Result{r}
		}
	case Results:
		if len(r) == n {
			return r
		}
	}
	t.Fatalf("Apply returned %#v for %d commands", v, n)
	return nil
}

// Packed logs replay identically with or without a snapshot (a restart)
// part-way, and every fresh grant's fence exceeds every fence issued
// before it, whatever the packing.
func TestPackedDeterminismAndMonotoneFencesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 80).Draw(t, "entries")
		cut := rapid.IntRange(0, n).Draw(t, "snapshotAt")
		straight, snapped := New(Options{}), New(Options{})
		clock := rapid.Int64Range(0, 3*MaxClockStep).Draw(t, "startClock")
		var lastFence uint64
		seen := map[uint64]bool{}
		for i := 1; i <= n; i++ {
			if i-1 == cut {
				snapped = restoreCopy(t, snapped)
			}
			cmds := drawPack(t, &clock)
			l := packedLog(uint64(i), cmds...)
			want := resultsOf(t, straight.Apply(l), len(cmds))
			got := resultsOf(t, snapped.Apply(l), len(cmds))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("entry %d: results differ\n straight %+v\n snapped  %+v", i, want, got)
			}
			for j, r := range want {
				if r.Index != uint64(i) && !r.Duplicate {
					t.Fatalf("entry %d command %d: index %d", i, j, r.Index)
				}
				if r.Outcome == Granted && !r.Duplicate && cmds[j].Kind == KindAcquire && !seen[r.Lock.Fence] {
					// A fresh grant (not the same grant answered again).
					if r.Lock.Fence <= lastFence {
						t.Fatalf("entry %d command %d: fence %d not above %d", i, j, r.Lock.Fence, lastFence)
					}
					seen[r.Lock.Fence] = true
					if r.Lock.Fence < uint64(i) {
						t.Fatalf("entry %d: fence %d below the index", i, r.Lock.Fence)
					}
					lastFence = max(lastFence, r.Lock.Fence)
				}
			}
		}
		if !bytes.Equal(stateBytes(t, straight), stateBytes(t, snapped)) {
			t.Fatalf("final states differ")
		}
	})
}

// Any bytes either decode to commands that re-encode to an equal entry,
// or fail with ErrUndecodable; DecodeEntry never panics.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeEntry([]Command{tick(1), tick(2)}))
	f.Add(EncodeEntry(roundTripCases))
	f.Add(acq(5, "a", 1, 10).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, packed, err := DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrUndecodable) {
				t.Fatalf("error %v does not wrap ErrUndecodable", err)
			}
			return
		}
		again, packedAgain, err := DecodeEntry(EncodeEntry(cmds))
		if err != nil || packedAgain != packed || !reflect.DeepEqual(again, cmds) {
			t.Fatalf("re-encode of %+v gave %+v, %v", cmds, again, err)
		}
	})
}
