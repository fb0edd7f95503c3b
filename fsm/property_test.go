package fsm

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// nextStamp models a leader's clock readings: mostly small steps forward,
// sometimes an older reading (a command that waited in the proposal queue
// behind newer ones) and sometimes a stall-sized jump beyond MaxClockStep.
func nextStamp(t *rapid.T, clock *int64) int64 {
	switch rapid.IntRange(0, 9).Draw(t, "clockMove") {
	case 0:
		return *clock - rapid.Int64Range(0, 5000).Draw(t, "back")
	case 1:
		*clock += rapid.Int64Range(MaxClockStep, 5*MaxClockStep).Draw(t, "jump")
	default:
		*clock += rapid.Int64Range(0, 3000).Draw(t, "step")
	}
	return *clock
}

// drawCommand draws any kind over a small name, token and request-id space
// so that collisions (busy, wrong token, repeated ids) are common.
func drawCommand(t *rapid.T, clock *int64) Command {
	stamp := nextStamp(t, clock)
	name := rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(t, "name")
	tk := byte(rapid.IntRange(1, 3).Draw(t, "token"))
	life := rapid.Int64Range(0, 20_000).Draw(t, "lifetime")
	id := rapid.SampledFrom([]string{"", "", "", "r1", "r2", "r3"}).Draw(t, "requestID")
	switch rapid.IntRange(0, 9).Draw(t, "kind") {
	case 0, 1, 2:
		return withID(acq(stamp, name, tk, life), id)
	case 3, 4:
		return withID(rel(stamp, name, tk), id)
	case 5, 6:
		return withID(ref(stamp, name, tk, life), id)
	case 7:
		return announce(stamp, "n-"+name, "http://"+name)
	default:
		return tick(stamp)
	}
}

// checkInvariants holds after every entry: refused answers hide tokens,
// nothing due stays held (except a lock this very entry granted or
// refreshed with an already-past deadline), fresh grants are fenced with
// their own index, and the two lock indexes agree.
func checkInvariants(t *rapid.T, m *Machine, index uint64, c Command, res Result) {
	if res.Outcome == Busy && !res.Lock.Token.IsZero() {
		t.Fatalf("entry %d: Busy reveals the holder's token", index)
	}
	if res.Outcome == Granted && !res.Duplicate && res.Lock.Fence != index {
		if l, _ := m.Get(c.Name); l.Fence != res.Lock.Fence || l.Fence >= index {
			t.Fatalf("entry %d: grant fenced %d, holder fenced %d", index, res.Lock.Fence, l.Fence)
		}
	}
	locks := m.List("", "", 0)
	next, ok := m.NextDeadline()
	if len(locks) != m.Len() || ok != (len(locks) > 0) {
		t.Fatalf("entry %d: List has %d locks, Len %d, NextDeadline ok %v", index, len(locks), m.Len(), ok)
	}
	for _, l := range locks {
		if l.Deadline < next {
			t.Fatalf("entry %d: NextDeadline %d after %q's deadline %d", index, next, l.Name, l.Deadline)
		}
		touched := l.Name == c.Name && !res.Duplicate && res.Lock.Deadline == l.Deadline
		if l.Deadline <= m.Now() && !touched {
			t.Fatalf("entry %d: %q still held at %d past its deadline %d", index, l.Name, m.Now(), l.Deadline)
		}
	}
}

// restoreCopy moves a machine through the full raft snapshot path.
func restoreCopy(t *rapid.T, m *Machine) *Machine {
	data := snapshotBytes(t, m)
	if !bytes.Equal(data, stateBytes(t, m)) {
		t.Fatalf("Persist and WriteSnapshot disagree")
	}
	return restoreFrom(t, data)
}

// Replaying one log gives identical answers and byte-identical state,
// whether or not a replica went through a snapshot part-way.
func TestDeterminismProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 150).Draw(t, "commands")
		cut := rapid.IntRange(0, n).Draw(t, "snapshotAt")
		straight, snapped := New(Options{}), New(Options{})
		clock := rapid.Int64Range(0, 3*MaxClockStep).Draw(t, "startClock")
		for i := 1; i <= n; i++ {
			if i-1 == cut {
				snapped = restoreCopy(t, snapped)
			}
			c := drawCommand(t, &clock)
			l := logFor(uint64(i), c)
			want, got := straight.Apply(l).(Result), snapped.Apply(l).(Result)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("entry %d (%v): results differ\n straight %+v\n snapped  %+v", i, c.Kind, want, got)
			}
			checkInvariants(t, straight, uint64(i), c, want)
		}
		if !bytes.Equal(stateBytes(t, straight), stateBytes(t, snapped)) {
			t.Fatalf("final states differ")
		}
		ai, ad := straight.Digest()
		bi, bd := snapped.Digest()
		if ai != bi || ad != bd || ai != uint64(n) {
			t.Fatalf("digests differ: %d %x vs %d %x", ai, ad, bi, bd)
		}
	})
}

// reading draws a leader clock reading: a new one (the clock moved on) or
// an earlier one that lands in the log late. Never beyond the newest.
func reading(t *rapid.T, newest *int64) int64 {
	if rapid.Bool().Draw(t, "fresh") {
		*newest += rapid.Int64Range(0, 2*MaxClockStep).Draw(t, "advance")
		return *newest
	}
	return *newest - rapid.Int64Range(0, 20_000).Draw(t, "age")
}

func otherCommand(t *rapid.T, stamp int64) Command {
	name := rapid.SampledFrom([]string{"o1", "o2", "o3"}).Draw(t, "other")
	tk := byte(rapid.IntRange(1, 2).Draw(t, "otherToken"))
	life := rapid.Int64Range(0, 3*MaxClockStep).Draw(t, "otherLifetime")
	switch rapid.IntRange(0, 3).Draw(t, "otherKind") {
	case 0:
		return acq(stamp, name, tk, life)
	case 1:
		return ref(stamp, name, tk, life)
	case 2:
		return rel(stamp, name, tk)
	}
	return tick(stamp)
}

// No interleaving of other clients' commands can free a grant (stamp s,
// lifetime L) before some applied stamp has reached s+L; and once the
// applied clock has reached it, the next command frees it.
func TestLeaseNeverShortenedProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := New(Options{})
		newest := rapid.Int64Range(0, 3*MaxClockStep).Draw(t, "startClock")
		before := rapid.IntRange(0, 30).Draw(t, "before")
		total := before + 1 + rapid.IntRange(1, 80).Draw(t, "after")
		life := rapid.Int64Range(1, 3*MaxClockStep).Draw(t, "lifetime")
		var grant Command
		// A new machine's clock reads 0, as if a stamp of 0 had been
		// applied: a grant stamped earlier is already partly spent.
		maxApplied := int64(0)
		for i := 0; i < total; i++ {
			stamp := reading(t, &newest)
			var c Command
			if i == before {
				grant = acq(stamp, "x", 9, life)
				c = grant
			} else {
				c = otherCommand(t, stamp)
			}
			res := m.Apply(logFor(uint64(i+1), c)).(Result)
			maxApplied = max(maxApplied, stamp)
			if i < before {
				continue
			}
			if i == before && res.Outcome != Granted {
				t.Fatalf("grant refused: %+v", res)
			}
			deadline := grant.Stamp + life
			_, held := m.Get("x")
			if !held {
				if !slices.Contains(res.Freed, "x") {
					t.Fatalf("x vanished at entry %d without being reported freed", i+1)
				}
				if maxApplied < deadline {
					t.Fatalf("x freed at entry %d with max stamp %d < deadline %d", i+1, maxApplied, deadline)
				}
				return
			}
			if i > before && m.Now() >= deadline {
				t.Fatalf("x still held at clock %d past deadline %d", m.Now(), deadline)
			}
		}
	})
}
