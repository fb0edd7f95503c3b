package chaos

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Crafted histories: each bad one must be reported by the check meant to
// catch it, and the good ones must pass every check.

const msec = int64(time.Millisecond)

// hb builds a history for one name, "x".
type hb struct {
	h History
}

func newHB() *hb { return &hb{h: History{Margin: 50 * time.Millisecond}} }

func (b *hb) add(o Op) *hb {
	o.ID = len(b.h.Ops)
	if o.Name == "" {
		o.Name = "x"
	}
	b.h.Ops = append(b.h.Ops, o)
	return b
}

// grant: client c was granted token f with lifetime l (ms) over [call, ret] (ms).
func (b *hb) grant(c int, f uint64, l, call, ret int64) *hb {
	return b.add(Op{Client: c, Kind: Acquire, Fence: f, Lifetime: time.Duration(l * msec), Call: call * msec, Return: ret * msec, Outcome: OK})
}

func (b *hb) acquire(c int, out Outcome, l, call, ret int64) *hb {
	return b.add(Op{Client: c, Kind: Acquire, Lifetime: time.Duration(l * msec), Call: call * msec, Return: ret * msec, Outcome: out})
}

func (b *hb) release(c int, f uint64, out Outcome, call, ret int64) *hb {
	return b.add(Op{Client: c, Kind: Release, Fence: f, Call: call * msec, Return: ret * msec, Outcome: out})
}

func (b *hb) refresh(c int, f uint64, out Outcome, l, call, ret int64) *hb {
	return b.add(Op{Client: c, Kind: Refresh, Fence: f, Lifetime: time.Duration(l * msec), Call: call * msec, Return: ret * msec, Outcome: out})
}

func (b *hb) get(c int, out Outcome, f uint64, call, ret int64) *hb {
	return b.add(Op{Client: c, Kind: Get, Fence: f, Call: call * msec, Return: ret * msec, Outcome: out})
}

func (b *hb) write(c int, tok uint64, accepted, inBelief bool, at int64) *hb {
	b.h.Writes = append(b.h.Writes, Write{Time: at * msec, Client: c, Name: "x", Token: tok, Accepted: accepted, InBelief: inBelief})
	return b
}

func check(t *testing.T, h History) *CheckResult {
	t.Helper()
	return Check(h, CheckConfig{VisualizationDir: t.TempDir(), LinearizabilityTimeout: 10 * time.Second})
}

func reported(r *CheckResult, name string) bool {
	for _, v := range r.Violations {
		if v.Check == name {
			return true
		}
	}
	return false
}

func expectClean(t *testing.T, h History) {
	t.Helper()
	r := check(t, h)
	if len(r.Violations) > 0 || r.Linearizable != porcupine.Ok {
		t.Fatalf("good history reported (%s): %+v", r.Linearizable, r.Violations)
	}
}

func expectReported(t *testing.T, h History, checks ...string) *CheckResult {
	t.Helper()
	r := check(t, h)
	for _, c := range checks {
		if !reported(r, c) {
			t.Errorf("%s violation not reported; got %+v", c, r.Violations)
		}
	}
	return r
}

func TestGoodHistoriesPass(t *testing.T) {
	cases := map[string]*hb{
		"release then grant": newHB().grant(0, 10, 2000, 0, 10).write(0, 10, true, true, 12).
			acquire(1, Busy, 1000, 20, 30).release(0, 10, OK, 100, 110).
			grant(1, 12, 1000, 120, 130).write(1, 12, true, true, 131).get(2, OK, 12, 140, 150),
		"expiry after the lifetime": newHB().grant(0, 10, 1000, 0, 10).get(1, OK, 10, 500, 510).
			grant(1, 11, 1000, 1000, 1010).release(0, 10, NotHeld, 1100, 1110).get(2, OK, 11, 1200, 1210),
		"expiry late, whatever a failover cost": newHB().grant(0, 10, 1000, 0, 10).
			acquire(1, Busy, 1000, 4000, 4010).grant(1, 11, 1000, 5000, 5010),
		"refresh extends": newHB().grant(0, 10, 1000, 0, 10).refresh(0, 10, OK, 1000, 800, 810).
			acquire(1, Busy, 1000, 1500, 1510).grant(1, 11, 1000, 1800, 1810),
		"concurrent grant and expiry": newHB().grant(0, 10, 1000, 0, 10).grant(1, 11, 1000, 200, 1100),
		"unknown acquire may have been granted": newHB().acquire(0, Unknown, 2000, 0, 50).
			acquire(1, Busy, 1000, 100, 110).grant(1, 11, 1000, 2100, 2110),
		"unknown acquire may not have been applied": newHB().acquire(0, Unknown, 2000, 0, 50).
			grant(1, 11, 1000, 100, 110),
		"unknown release may have happened": newHB().grant(0, 10, 5000, 0, 10).release(0, 10, Unknown, 100, 200).
			grant(1, 11, 1000, 300, 310),
		"stale write refused after a pause": newHB().grant(0, 10, 1000, 0, 10).write(0, 10, true, true, 11).
			grant(1, 11, 1000, 1100, 1110).write(1, 11, true, true, 1111).
			write(0, 10, false, false, 2500),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) { expectClean(t, b.h) })
	}
}

func TestOverlappingHoldersReported(t *testing.T) {
	h := newHB().grant(0, 10, 2000, 0, 10).grant(1, 12, 2000, 500, 510).h
	r := expectReported(t, h, CheckLinearizable, CheckBelief, CheckEarlyExpiry)
	if r.Visualization == "" {
		t.Fatal("no visualisation written")
	}
	data, err := os.ReadFile(r.Visualization)
	if err != nil || !strings.Contains(string(data), "<html") {
		t.Fatalf("visualisation %s: %v", r.Visualization, err)
	}
}

func TestDecreasingFencingTokenReported(t *testing.T) {
	h := newHB().grant(0, 20, 2000, 0, 10).release(0, 20, OK, 100, 110).grant(1, 15, 2000, 200, 210).h
	expectReported(t, h, CheckFencing, CheckLinearizable)
}

func TestDuplicateFencingTokenReported(t *testing.T) {
	h := newHB().grant(0, 20, 1000, 0, 10).grant(1, 20, 1000, 2000, 2010).h
	expectReported(t, h, CheckFencing, CheckLinearizable)
}

func TestLostReleaseReported(t *testing.T) {
	h := newHB().grant(0, 10, 5000, 0, 10).release(0, 10, OK, 100, 110).
		acquire(1, Busy, 1000, 200, 210).get(2, OK, 10, 300, 310).h
	expectReported(t, h, CheckLostRelease, CheckLinearizable)
}

func TestLostRefreshReported(t *testing.T) {
	h := newHB().grant(0, 10, 1000, 0, 10).refresh(0, 10, OK, 2000, 800, 810).
		grant(1, 11, 1000, 1200, 1210).h
	expectReported(t, h, CheckEarlyExpiry, CheckLinearizable, CheckBelief)
}

func TestEarlyExpiryReported(t *testing.T) {
	h := newHB().grant(0, 10, 3000, 0, 10).get(1, NotFound, 0, 1000, 1010).h
	expectReported(t, h, CheckEarlyExpiry, CheckLinearizable)
}

func TestStaleFencedWriteAcceptedReported(t *testing.T) {
	h := newHB().grant(0, 10, 1000, 0, 10).grant(1, 11, 1000, 1100, 1110).
		write(0, 10, true, true, 11).write(1, 11, true, true, 1111).write(0, 10, true, false, 2500).h
	expectReported(t, h, CheckResource)
}

func TestRefusedWriteInsideBeliefReported(t *testing.T) {
	h := newHB().write(1, 11, true, true, 5).write(0, 10, false, true, 10).h
	expectReported(t, h, CheckResource)
}

func TestUnknownGrantThenEarlyGrantReported(t *testing.T) {
	// The busy answer proves the unknown acquire was granted by 110 ms, so
	// its lease runs to 2 s at least; a grant at 510 ms is too early.
	h := newHB().acquire(0, Unknown, 2000, 0, 50).acquire(1, Busy, 1000, 100, 110).
		grant(2, 12, 1000, 500, 510).h
	expectReported(t, h, CheckLinearizable)
}

func TestBusyOnFreeLockReported(t *testing.T) {
	h := newHB().grant(0, 10, 5000, 0, 10).release(0, 10, OK, 100, 110).acquire(1, Busy, 1000, 200, 210).h
	expectReported(t, h, CheckLinearizable)
}

func TestFastLeaderClockReported(t *testing.T) {
	// What a leader clock running three times too fast looks like: every
	// 3 s lease is handed on after about 1 s.
	b := newHB()
	for i := int64(0); i < 5; i++ {
		b.grant(int(i%2), uint64(10+i), 3000, i*1000, i*1000+10)
	}
	expectReported(t, b.h, CheckLinearizable, CheckBelief, CheckEarlyExpiry)
}
