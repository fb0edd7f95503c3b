package chaos

import (
	"fmt"
	"sort"
	"time"
)

// Checks on the time windows of holders: belief windows, lost releases
// and leases that end before their lifetime.

// window is a stretch of time in which a holder believed it held a lock.
type window struct {
	fence      uint64
	op         int
	client     int
	start, end int64
}

// lockOps are the operations on one grant's token, in call order.
type lockOps struct {
	grant     Op
	refreshes []Op
	releases  []Op
}

// tokenOps groups, per name, the refreshes and releases under each grant.
func tokenOps(list []Op) map[uint64]*lockOps {
	out := map[uint64]*lockOps{}
	for _, o := range list {
		if o.Kind == Acquire && o.Outcome == OK {
			out[o.Fence] = &lockOps{grant: o}
		}
	}
	for _, o := range list {
		t := out[o.Fence]
		if t == nil || o.Outcome == Failed {
			continue
		}
		switch o.Kind {
		case Refresh:
			t.refreshes = append(t.refreshes, o)
		case Release:
			t.releases = append(t.releases, o)
		}
	}
	return out
}

// beliefWindows: a holder believes from the grant's answer until send
// time + lifetime - margin, and again from each successful refresh's
// answer until its send time + lifetime - margin, but never after it sent
// a release.
func beliefWindows(t *lockOps, margin int64) []window {
	cut := never
	for _, r := range t.releases {
		cut = min(cut, r.Call)
	}
	add := func(ws []window, o Op, start int64) []window {
		end := min(o.Call+int64(o.Lifetime)-margin, cut)
		if end > start {
			ws = append(ws, window{fence: t.grant.Fence, op: o.ID, client: o.Client, start: start, end: end})
		}
		return ws
	}
	ws := add(nil, t.grant, t.grant.Return)
	for _, r := range t.refreshes {
		if r.Outcome == OK {
			ws = add(ws, r, r.Return)
		}
	}
	return ws
}

// checkBeliefs: no two holders' belief windows on one name overlap.
func checkBeliefs(ops []Op, margin time.Duration) []Violation {
	var out []Violation
	for name, list := range byName(ops) {
		var ws []window
		for _, t := range tokenOps(list) {
			ws = append(ws, beliefWindows(t, int64(margin))...)
		}
		sort.Slice(ws, func(i, j int) bool { return ws[i].start < ws[j].start })
		reported := map[[2]uint64]bool{}
		for i, a := range ws {
			for _, b := range ws[i+1:] {
				if b.start >= a.end {
					break
				}
				key := [2]uint64{min(a.fence, b.fence), max(a.fence, b.fence)}
				if a.fence == b.fence || reported[key] {
					continue
				}
				reported[key] = true
				out = append(out, Violation{Check: CheckBelief, Ops: []int{a.op, b.op}, Message: fmt.Sprintf(
					"on %q, c%d believed it held #%d over [%s, %s] and c%d believed it held #%d from %s",
					name, a.client, a.fence, ms(a.start), ms(a.end), b.client, b.fence, ms(b.start))})
			}
		}
	}
	return out
}

// checkLostReleases: after a release is acknowledged, nothing finds the
// released token still holding the lock.
func checkLostReleases(ops []Op) []Violation {
	var out []Violation
	for name, list := range byName(ops) {
		for _, rel := range list {
			if rel.Kind != Release || rel.Outcome != OK {
				continue
			}
			for _, o := range list {
				if o.ID == rel.ID || o.Call <= rel.Return || o.Outcome != OK || o.Fence != rel.Fence {
					continue
				}
				if o.Kind == Get || o.Kind == Refresh || o.Kind == Release {
					out = append(out, Violation{Check: CheckLostRelease, Ops: []int{rel.ID, o.ID}, Message: fmt.Sprintf(
						"release of #%d on %q was acknowledged at %s, yet %s at %s found it held",
						rel.Fence, name, ms(rel.Return), o.Kind, ms(o.Call))})
				}
			}
		}
	}
	return out
}

// checkEarlyExpiry: a grant (or a refresh) keeps the lock until its send
// time + lifetime; nothing may find it gone before that unless its holder
// sent a release.
func checkEarlyExpiry(ops []Op, tol int64) []Violation {
	var out []Violation
	for name, list := range byName(ops) {
		for _, t := range tokenOps(list) {
			for _, x := range list {
				if !showsGone(x, t.grant) || x.Call <= t.grant.Return || releasedBefore(t, x.Return) {
					continue
				}
				if d := guaranteedUntil(t, x, tol); x.Return < d {
					out = append(out, Violation{Check: CheckEarlyExpiry, Ops: []int{t.grant.ID, x.ID}, Message: fmt.Sprintf(
						"#%d on %q was guaranteed until %s, but %s of c%d found it gone by %s",
						t.grant.Fence, name, ms(d), x.Kind, x.Client, ms(x.Return))})
				}
			}
		}
	}
	return out
}

// showsGone reports whether x's definite answer means g's lock was no
// longer held when x took effect.
func showsGone(x Op, g Op) bool {
	switch {
	case x.Kind == Acquire && x.Outcome == OK:
		return x.Fence != g.Fence
	case x.Kind == Get && x.Outcome == OK:
		return x.Fence != g.Fence
	case x.Kind == Get && x.Outcome == NotFound:
		return true
	case (x.Kind == Refresh || x.Kind == Release) && x.Outcome == NotHeld:
		return x.Fence == g.Fence
	}
	return false
}

func releasedBefore(t *lockOps, at int64) bool {
	for _, r := range t.releases {
		if r.Call < at {
			return true
		}
	}
	return false
}

// guaranteedUntil is the earliest time the lock could have ended, as far
// as x can tell: the latest deadline promised by the grant or by a refresh
// acknowledged before x was sent. (A refresh never moves a deadline
// earlier, so refreshes x cannot order against do not lower it.)
func guaranteedUntil(t *lockOps, x Op, tol int64) int64 {
	d := t.grant.Call + int64(t.grant.Lifetime) - tol
	for _, r := range t.refreshes {
		if r.Outcome == OK && r.Return < x.Call {
			d = max(d, r.Call+int64(r.Lifetime)-tol)
		}
	}
	return d
}
