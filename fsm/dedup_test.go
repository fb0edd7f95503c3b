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

// A refusal changed nothing, so it is not remembered: a repeat of a
// refused acquire is evaluated afresh, and may be granted.
func TestBusyIsNotRemembered(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	busy := r.do(withID(acq(1100, "a", 2, 5000), "req-b"))
	r.do(rel(1200, "a", 1))
	again := r.do(withID(acq(1300, "a", 3, 5000), "req-b"))
	if busy.Outcome != Busy || again.Outcome != Granted || again.Duplicate {
		t.Fatalf("busy %+v, repeat %+v", busy, again)
	}
	if r.m.dedup.len() != 1 {
		t.Errorf("dedup holds %d ids, want the grant only", r.m.dedup.len())
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
	r.do(acq(1000, "n", 1, 1<<40))
	r.do(withID(rel(1000, "n", 1), "req-1"))
	r.do(acq(1000, "a", 1, 100))
	got := r.do(withID(rel(2000, "n", 1), "req-1"))
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
	r.do(acq(1000, "a", 1, 1<<40))
	r.do(withID(rel(1000, "a", 1), "req-1"))
	r.do(tick(1000 + 2*DedupTTL))
	if got := r.do(withID(rel(1000+2*DedupTTL, "a", 1), "req-1")); !got.Duplicate {
		t.Errorf("one capped jump forgot the id: %+v", got)
	}
}

// Regression (issue 8 item 7): the table used to evict its oldest id at
// MaxDedup, live or not, so a flood of fresh ids made a retried acquire
// act twice. Now a full table refuses new ids and keeps every live one.
func TestDedupFullRefusesNewIDsAndKeepsLiveOnes(t *testing.T) {
	r := newRig(t)
	r.m.dedup.limit = 50
	r.do(acq(1000, "x", 1, 1<<40))
	id := func(i int) string { return fmt.Sprintf("id-%06d", i) }
	for i := 0; i < 50; i++ {
		if got := r.do(withID(ref(1000, "x", 1, 1<<40), id(i))); got.Outcome != Refreshed {
			t.Fatalf("refresh %d = %+v", i, got)
		}
	}
	got := r.do(withID(acq(1001, "y", 2, 5000), "fresh"))
	if got.Outcome != TooManyIDs || r.m.Len() != 1 {
		t.Fatalf("new id on a full table = %+v (%d locks), want TooManyIDs and no grant", got, r.m.Len())
	}
	if got := r.do(withID(ref(1002, "x", 1, 1<<40), id(0))); !got.Duplicate || got.Outcome != Refreshed {
		t.Errorf("oldest live id forgotten: %+v", got)
	}
	if got := r.do(acq(1003, "y", 2, 5000)); got.Outcome != Granted {
		t.Errorf("a command without an id is still served: %+v", got)
	}
	r.advanceTo(1000 + DedupTTL)
	if got := r.do(withID(acq(1000+DedupTTL, "z", 3, 5000), "fresh")); got.Outcome != Granted {
		t.Errorf("after the TTL new ids are accepted again: %+v", got)
	}
}

// A retried acquire whose grant has ended (released, expired, or undone
// because its first client went away) must not be told it holds the lock:
// it is answered Ended (issue 8 item 11: a repeat never acts twice), and a grant that is still alive is answered as it
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
	if got.Outcome != Ended || !got.Duplicate || r.m.Len() != 0 || got.Lock.Fence != first.Lock.Fence {
		t.Fatalf("repeat of a released grant = %+v (%d locks), want Ended with the first fence and no grant", got, r.m.Len())
	}
	r.do(acq(2400, "a", 2, 5000))
	got = r.do(withID(acq(2500, "a", 9, 5000), "req-g"))
	if got.Outcome != Ended || got.Lock.Fence != first.Lock.Fence || !got.Lock.Token.IsZero() {
		t.Fatalf("repeat after someone else took the lock = %+v, want Ended without any token", got)
	}
	r.do(withID(ref(2600, "a", 2, 5000), "req-f"))
	r.do(rel(2700, "a", 2))
	if got := r.do(withID(ref(2800, "a", 2, 5000), "req-f")); got.Outcome != NotHeld || !got.Duplicate {
		t.Fatalf("repeat of a refresh whose lock was released = %+v, want NotHeld", got)
	}
}

// Issue 8 item 9: nothing capped the number of held locks. Past the cap an
// acquire of a free lock is refused, deterministically, and changes
// nothing; held locks are still refreshed and released, and a freed slot
// can be taken again.
func TestLockCountCap(t *testing.T) {
	r := newRig(t)
	r.m.lockLimit = 3
	for i, name := range []string{"a", "b", "c"} {
		if got := r.do(acq(1000, name, byte(i+1), 1<<40)); got.Outcome != Granted {
			t.Fatalf("grant %s = %+v", name, got)
		}
	}
	got := r.do(withID(acq(1000, "d", 4, 1<<40), "rid-d"))
	if got.Outcome != TooManyLocks || r.m.Len() != 3 || r.m.dedup.len() != 0 {
		t.Fatalf("acquire past the cap = %+v, %d locks, %d ids", got, r.m.Len(), r.m.dedup.len())
	}
	if got := r.do(acq(1000, "a", 9, 10)); got.Outcome != Busy {
		t.Errorf("a held lock past the cap answers %v, want busy", got.Outcome)
	}
	r.do(rel(1000, "a", 1))
	if got := r.do(withID(acq(1000, "d", 4, 1<<40), "rid-d")); got.Outcome != Granted {
		t.Errorf("a freed slot is taken again: %+v", got)
	}
}
