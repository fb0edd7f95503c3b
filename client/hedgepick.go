package client

import (
	"net/url"
	"time"
)

// Where legs go, when a hedge is due, and what a leg's hops tell the
// call (see hedge.go).

// hopWatcher is told of each hop of a leg (do) and may stop it.
type hopWatcher interface {
	begin(u string) error                    // the hop is about to be sent
	answered()                               // its response headers arrived
	follow(next *url.URL, base string) error // a redirect to the node at base is about to be followed
}

// pick chooses a leg's endpoint: the remembered leader, else the
// endpoints in turn from the attempt's index, skipping suspect nodes and
// nodes a leg already waits on. A hedge goes only to such a node (ok
// false: none); a retry falls back to a node in flight, then to a
// suspect one, rather than not run.
func (run *callRun) pick(hedge bool) (ep string, remembered *string, ok bool) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if l := run.c.leader.Load(); l != nil {
		o := originOf(*l)
		if !run.c.trusts(o) { // a reported member the cluster no longer reports
			run.c.leader.CompareAndSwap(l, nil)
		} else if !run.waitedOnLocked(o, false) {
			return *l, l, true
		}
	}
	eps := run.c.endpoints
	tiers := []func(o string) bool{
		func(o string) bool { return !run.waitedOnLocked(o, false) },
		func(o string) bool { return !run.waitedOnLocked(o, true) },
		func(string) bool { return true },
	}
	if hedge {
		tiers = tiers[:1]
	}
	for _, fits := range tiers {
		for k := range eps {
			i := (run.attempts + k) % len(eps)
			if fits(run.c.origins[i]) {
				return eps[i], nil, true
			}
		}
	}
	return "", nil, false
}

// waitedOnLocked reports whether a leg in flight waits on origin o, or,
// with hung, whether o is suspect: a leg waits on it unanswered and was
// hedged for it. A node stays suspect only while the call's request
// hangs there: once that attempt timed out, a follower that still
// redirects to it (a live leader that lost one reply) is believed again.
// run.mu held.
func (run *callRun) waitedOnLocked(o string, hung bool) bool {
	for _, l := range run.pending {
		if l.hop == o && (!hung || (l.hedged && !l.heard)) {
			return true
		}
	}
	return false
}

// hedgeAt is when the next hedge is due, zero if none: once every leg in
// flight has waited HedgeAfter for its hop's answer beyond the lock wait
// it asked for, and some leg's hop has not been hedged yet.
func (run *callRun) hedgeAt() time.Time {
	after := run.c.cfg.HedgeAfter
	if after < 0 || run.ending {
		return time.Time{}
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	var at time.Time
	fresh := false
	for _, l := range run.pending {
		if l.heard {
			return time.Time{} // an answer is arriving
		}
		fresh = fresh || !l.hedged
		due := l.hopStart
		if l.waitEnd.After(due) {
			due = l.waitEnd
		}
		if due = due.Add(after); due.After(at) {
			at = due
		}
	}
	if !fresh {
		return time.Time{}
	}
	return at
}

func (run *callRun) hedgeDue() bool {
	at := run.hedgeAt()
	return !at.IsZero() && !time.Now().Before(at)
}

// hedge marks the legs in flight as hedged, which makes the nodes they
// wait on suspect (and forgets a suspect remembered leader), then sends
// the request once more to an endpoint that is neither suspect nor asked,
// if there is one.
func (run *callRun) hedge() {
	run.mu.Lock()
	for _, l := range run.pending {
		l.hedged = true
	}
	run.mu.Unlock()
	if l := run.c.leader.Load(); l != nil && run.isSuspect(originOf(*l)) {
		run.c.leader.CompareAndSwap(l, nil)
	}
	// A marshal error cannot happen here: the first leg's body marshalled.
	_, _ = run.launch(true)
}

func (run *callRun) isSuspect(o string) bool {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.waitedOnLocked(o, true)
}

// begin records the hop a leg now waits on; a leg left over after the
// call settled is stopped instead.
func (l *leg) begin(u string) error {
	if l.run.settled.Load() {
		return errSettled
	}
	run := l.run
	run.mu.Lock()
	l.hop, l.hopStart, l.heard, l.hedged = originOf(u), time.Now(), false, false
	run.mu.Unlock()
	run.poke()
	return nil
}

// answered records that the hop's node answered: it is alive, so it is no
// longer suspect.
func (l *leg) answered() {
	run := l.run
	run.mu.Lock()
	l.heard = true
	run.mu.Unlock()
	run.poke()
}

// follow refuses a redirect to a suspect node while some endpoint is not
// suspect: the leg ends "not applied" and the call asks another node,
// which by then may know a new leader. With every endpoint suspect it is
// followed (the node may only be slow).
func (l *leg) follow(next *url.URL, base string) error {
	run := l.run
	if run.settled.Load() {
		return errSettled
	}
	o := origin(next)
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.waitedOnLocked(o, true) {
		for _, eo := range run.c.origins {
			if !run.waitedOnLocked(eo, true) {
				return &unfollowedError{to: o, why: "it did not answer this call in time"}
			}
		}
	}
	l.base = base
	return nil
}

// poke wakes the loop to recompute its timer.
func (run *callRun) poke() {
	select {
	case run.wake <- struct{}{}:
	default:
	}
}
