package fsm

import (
	"fmt"
	"testing"
)

// A retried acquire carries a fresh token (the leader draws one per
// proposal), so the dedup table must answer by request id alone.
func TestDuplicateAcquireGetsFirstAnswer(t *testing.T) {
	r := newRig(t)
	first := r.do(withID(acq(1000, "a", 1, 5000), "req-1"))
	again := r.do(withID(acq(2000, "a", 2, 9000), "req-1"))
	if !again.Duplicate || first.Duplicate {
		t.Fatalf("Duplicate flags: first %v, again %v", first.Duplicate, again.Duplicate)
	}
	if again.Outcome != Granted || again.Index != 1 || again.Lock != first.Lock {
		t.Errorf("repeat = %+v, want the first grant %+v", again, first)
	}
	if again.Now != 2000 {
		t.Errorf("repeat Now = %d, want the current clock 2000", again.Now)
	}
	if l, _ := r.m.Get("a"); l.Token != tok(1) || l.Deadline != 6000 || r.m.Len() != 1 {
		t.Errorf("repeat acted: holder %+v, %d locks", l, r.m.Len())
	}
}

// A Busy answer is remembered too: the retry must not grab a lock that
// became free after the first attempt was refused.
func TestDuplicateBusyIsNotRetried(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	busy := r.do(withID(acq(1100, "a", 2, 5000), "req-b"))
	r.do(rel(1200, "a", 1))
	again := r.do(withID(acq(1300, "a", 3, 5000), "req-b"))
	if busy.Outcome != Busy || again.Outcome != Busy || !again.Duplicate || again.Index != 2 {
		t.Fatalf("busy %+v, repeat %+v", busy, again)
	}
	if !again.Lock.Token.IsZero() {
		t.Error("a duplicate Busy reveals the holder's token")
	}
	if r.m.Len() != 0 {
		t.Error("the repeated request acquired the lock")
	}
}

func TestDuplicateReleaseAndRefresh(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	r.do(withID(ref(1100, "a", 1, 5000), "req-r"))
	if got := r.do(withID(ref(1200, "a", 1, 9000), "req-r")); !got.Duplicate || got.Lock.Deadline != 6100 {
		t.Errorf("repeated refresh = %+v", got)
	}
	if l, _ := r.m.Get("a"); l.Deadline != 6100 {
		t.Errorf("repeated refresh moved the deadline to %d", l.Deadline)
	}
	r.do(withID(rel(1300, "a", 1), "req-x"))
	r.do(acq(1400, "a", 2, 5000))
	got := r.do(withID(rel(1500, "a", 1), "req-x"))
	if got.Outcome != Released || !got.Duplicate || len(got.Freed) != 0 {
		t.Errorf("repeated release = %+v, want Released, duplicate, nothing freed", got)
	}
	if l, ok := r.m.Get("a"); !ok || l.Token != tok(2) {
		t.Error("repeated release freed the new holder's lock")
	}
}

// A duplicate still expires due locks and reports them.
func TestDuplicateReportsExpiries(t *testing.T) {
	r := newRig(t)
	r.do(withID(rel(1000, "none", 1), "req-1"))
	r.do(acq(1000, "a", 1, 100))
	got := r.do(withID(rel(2000, "none", 1), "req-1"))
	if !got.Duplicate || len(got.Freed) != 1 || got.Freed[0] != "a" {
		t.Errorf("duplicate = %+v, want it to report a's expiry", got)
	}
}

func TestDedupForgottenAfterTTL(t *testing.T) {
	r := newRig(t)
	const t0 = 1000
	r.do(withID(acq(t0, "a", 1, 10), "req-1"))
	r.advanceTo(t0 + DedupTTL - 1)
	if got := r.do(withID(acq(t0+DedupTTL-1, "a", 2, 10), "req-1")); !got.Duplicate {
		t.Fatalf("forgotten 1 ms before the TTL: %+v", got)
	}
	got := r.do(withID(acq(t0+DedupTTL, "a", 2, 10), "req-1"))
	if got.Duplicate || got.Outcome != Granted || got.Lock.Fence != r.idx {
		t.Errorf("after the TTL the request must act afresh, got %+v", got)
	}
	if r.m.dedup.len() != 1 {
		t.Errorf("dedup holds %d ids, want only the new req-1", r.m.dedup.len())
	}
}

// The TTL runs on the lease clock, so a capped clock keeps ids longer:
// a stalled leader's far-future stamp cannot make a retry act twice.
func TestDedupTTLUsesLeaseClock(t *testing.T) {
	r := newRig(t)
	r.do(withID(rel(1000, "a", 1), "req-1"))
	r.do(tick(1000 + 2*DedupTTL))
	if got := r.do(withID(rel(1000+2*DedupTTL, "a", 1), "req-1")); !got.Duplicate {
		t.Errorf("one capped jump forgot the id: %+v", got)
	}
}

func TestDedupBoundEvictsOldest(t *testing.T) {
	m := New(Options{})
	id := func(i int) string { return fmt.Sprintf("id-%06d", i) }
	// ApplyCommand keeps 100k commands fast under -race; the log form is
	// covered elsewhere.
	var idx uint64
	apply := func(c Command) Result { idx++; return m.ApplyCommand(idx, c) }
	for i := 0; i <= MaxDedup; i++ {
		apply(withID(rel(1000, "x", 1), id(i)))
	}
	if m.dedup.len() != MaxDedup {
		t.Fatalf("dedup holds %d ids, want %d", m.dedup.len(), MaxDedup)
	}
	if got := apply(withID(rel(1000, "x", 1), id(1))); !got.Duplicate || got.Index != 2 {
		t.Errorf("second-oldest id forgotten: %+v", got)
	}
	if got := apply(withID(rel(1000, "x", 1), id(0))); got.Duplicate {
		t.Errorf("oldest id still remembered past MaxDedup: %+v", got)
	}
	// Re-remembering id 0 evicted id 1, now the oldest.
	if got := apply(withID(rel(1000, "x", 1), id(1))); got.Duplicate {
		t.Errorf("id 1 should have been evicted by the new entry: %+v", got)
	}
	if got := apply(withID(rel(1000, "x", 1), id(MaxDedup))); !got.Duplicate {
		t.Errorf("newest id forgotten: %+v", got)
	}
}

// A retried acquire whose grant has ended (released, expired, or undone
// because its first client went away) must not be told it holds the lock:
// it is answered Busy, and a grant that is still alive is answered as it
// is now (after refreshes).
func TestDuplicateGrantIsAnsweredFromTheCurrentLock(t *testing.T) {
	r := newRig(t)
	first := r.do(withID(acq(1000, "a", 1, 5000), "req-g"))
	r.do(ref(2000, "a", 1, 8000))
	if got := r.do(withID(acq(2100, "a", 9, 5000), "req-g")); got.Outcome != Granted || got.Lock.Deadline != 10000 || got.Lock.Fence != first.Lock.Fence {
		t.Fatalf("repeat of a live grant = %+v, want it with the refreshed deadline", got)
	}
	r.do(rel(2200, "a", 1))
	got := r.do(withID(acq(2300, "a", 9, 5000), "req-g"))
	if got.Outcome != Busy || !got.Duplicate || r.m.Len() != 0 {
		t.Fatalf("repeat of a released grant = %+v (%d locks), want Busy and no grant", got, r.m.Len())
	}
	r.do(acq(2400, "a", 2, 5000))
	got = r.do(withID(acq(2500, "a", 9, 5000), "req-g"))
	if got.Outcome != Busy || got.Lock.Fence == first.Lock.Fence || !got.Lock.Token.IsZero() {
		t.Fatalf("repeat after someone else took the lock = %+v, want Busy naming the new holder without its token", got)
	}
	r.do(withID(ref(2600, "a", 2, 5000), "req-f"))
	r.do(rel(2700, "a", 2))
	if got := r.do(withID(ref(2800, "a", 2, 5000), "req-f")); got.Outcome != NotHeld || !got.Duplicate {
		t.Fatalf("repeat of a refresh whose lock was released = %+v, want NotHeld", got)
	}
}
