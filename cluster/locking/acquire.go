package locking

import (
	"context"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

const (
	// expiryGrace is how long past a lock's deadline a waiter keeps
	// waiting for the expiry to be applied before it gives up. The leader
	// proposes the expiry at the deadline, so it normally applies within
	// one commit; this only bounds a wait on a stalled cluster.
	expiryGrace = 5 * time.Second
	// recheckDelay is added to the time left until a deadline before a
	// waiter whose timeout has passed looks again. The expiry itself wakes
	// the waiter; the recheck is only a fallback.
	recheckDelay = 100 * time.Millisecond
)

// Acquire takes p.Name for the caller, waiting up to p.Wait in FIFO order.
// It returns a Granted result; a Busy result (not acquired in time); a
// duplicate's answer (Granted, or Ended when that grant has ended since:
// a repeated request id never acts twice); a TooManyLocks or TooManyIDs
// refusal; or an error. A request without an id is given one before its
// first proposal, so that a RetryError can always carry it. A grant whose
// client went away before it committed is released at once, so that no
// lock is held for nobody.
func (s *Service) Acquire(ctx context.Context, p Params) (fsm.Result, error) {
	if p.RequestID == "" {
		p.RequestID = NewRequestID()
	}
	deadline := time.Now().Add(p.Wait)
	res, err := s.acquireOrWait(ctx, p)
	claimed := err == nil && res.Outcome == fsm.Granted && res.Duplicate
	if claimed {
		res = s.claimRepeat(ctx, p, res)
	}
	if err == nil && res.Outcome == fsm.Granted && ctx.Err() != nil {
		if claimed {
			s.abandons.unclaim(grantKey(p.Name, p.RequestID))
		}
		s.releaseAbandoned(res.Lock, p.RequestID)
		return fsm.Result{}, ErrClientGone
	}
	return res, retryable(err, p.RequestID, time.Until(deadline))
}

// acquireOrWait proposes at once unless others wait for the name, in which
// case the request queues behind them, whether or not it carries a request
// id (issue 8 item 2: an id used to let a request propose past the queue).
// A retry whose id already acted is answered from applied state instead:
// it finds its earlier grant without overtaking anyone.
func (s *Service) acquireOrWait(ctx context.Context, p Params) (fsm.Result, error) {
	if s.waits.contended(p.Name) {
		if res, ok := s.c.Recall(fsm.KindAcquire, p.Name, p.RequestID); ok {
			return res, nil
		}
		if p.Wait == 0 {
			return s.busyNow(p.Name), nil
		}
		now, err := s.c.ClusterNow()
		if err != nil {
			return fsm.Result{}, err
		}
		return s.wait(ctx, p, now)
	}
	res, err := s.propose(ctx, p)
	if err != nil || res.Outcome != fsm.Busy || p.Wait == 0 {
		return res, err
	}
	return s.wait(ctx, p, res.Now)
}

// wait parks the request in name's queue until it is handed the lock, its
// timeout passes, its client leaves or this node stops leading. arrival is
// the cluster time the request was first refused (or found a queue).
func (s *Service) wait(ctx context.Context, p Params, arrival int64) (fsm.Result, error) {
	w, err := s.waits.enqueue(ctx, s.request(p))
	if err != nil {
		return fsm.Result{}, err
	}
	defer s.waits.finish(w)
	s.kickIfFree(p.Name)
	timer := time.NewTimer(p.Wait)
	defer timer.Stop()
	limit := arrival + p.Wait.Milliseconds()
	for {
		var m wake
		select {
		case m = <-w.wake:
		case <-timer.C:
			var turn, keep bool
			if m, turn, keep = s.atTimeout(w, limit, timer); keep {
				continue
			} else if !turn {
				return s.busyNow(p.Name), nil
			}
		case <-ctx.Done():
			return fsm.Result{}, ErrClientGone // finish passes the turn on
		case <-w.gen.done:
			return fsm.Result{}, w.gen.err
		}
		res, err := m.res, m.err
		if !m.handed {
			res, err = s.propose(ctx, p)
		}
		if err != nil {
			return res, err
		}
		switch res.Outcome {
		case fsm.Granted:
			s.waits.granted(w)
			// Issue 8 item 6: the lock may have been freed again (a
			// short lifetime) before the turn was given back; that
			// freed event found the turn taken and was ignored.
			s.kickIfFree(p.Name)
			return res, nil
		case fsm.Busy:
			// A request that found no queue got in first: keep our place.
			s.waits.requeue(w)
			s.kickIfFree(p.Name)
		default:
			return res, nil
		}
	}
}

// atTimeout decides what a waiter whose timeout passed does: take a turn
// that arrived together with the timeout (turn); keep waiting, timer
// re-armed (keep), while the holder is due to expire by the waiter's limit
// or a grant for it is in flight; or give up (neither).
func (s *Service) atTimeout(w *waiter, limit int64, timer *time.Timer) (m wake, turn, keep bool) {
	if m, ok := s.takeTurn(w); ok {
		return m, true, false
	}
	if d, ok := s.extendWait(w.req.Name, limit); ok || s.waits.pending(w) {
		if !ok {
			d = recheckDelay
		}
		timer.Reset(d)
		return wake{}, false, true
	}
	// The expiry this waiter waited for may have been applied between the
	// looks above: look once more.
	m, turn = s.takeTurn(w)
	return m, turn, false
}

// takeTurn consumes a turn or result already there, kicking the queue
// first when the lock is free with its event still on the way.
func (s *Service) takeTurn(w *waiter) (wake, bool) {
	select {
	case m := <-w.wake:
		return m, true
	default:
	}
	s.kickIfFree(w.req.Name)
	select {
	case m := <-w.wake:
		return m, true
	default:
		return wake{}, false
	}
}

// extendWait decides whether a waiter whose timeout has passed keeps
// waiting: it does while the lock's holder is due to expire by the
// waiter's own limit (arrival + timeout, cluster time) and that expiry has
// not been applied yet (docs/design.md, Waiting for a lock: "not turned
// away early"). It returns when to look again.
func (s *Service) extendWait(name string, limit int64) (time.Duration, bool) {
	lock, held, _, _ := s.c.StaleReadLock(name)
	if !held || lock.Deadline > limit {
		return 0, false
	}
	now, err := s.c.ClusterNow()
	if err != nil || now-lock.Deadline > expiryGrace.Milliseconds() {
		return 0, false
	}
	left := max(lock.Deadline-now, 0)
	return time.Duration(left)*time.Millisecond + recheckDelay, true
}

// kickIfFree hands name to its queue if the lock is free right now. Local
// state suffices on the leader: events are delivered after the state they
// report.
func (s *Service) kickIfFree(name string) {
	if _, held, _, _ := s.c.StaleReadLock(name); !held {
		s.waits.kick(name)
	}
}

func (s *Service) request(p Params) cluster.AcquireRequest {
	return cluster.AcquireRequest{Name: p.Name, Lifetime: p.Lifetime, Owner: p.Owner, RequestID: p.RequestID}
}

// propose asks the cluster for the lock, under the request's own id: a
// refusal is not remembered, so every try of one request may use it.
func (s *Service) propose(ctx context.Context, p Params) (fsm.Result, error) {
	pctx, cancel := s.proposeCtx(ctx)
	defer cancel()
	return s.proposeHere(pctx, func(ctx context.Context) (fsm.Result, error) {
		return s.c.Acquire(ctx, s.request(p))
	})
}

// busyNow is a Busy answer with the current holder, for a request that
// was not granted. The holder's session token is never shown.
func (s *Service) busyNow(name string) fsm.Result {
	lock, held, now, _ := s.c.StaleReadLock(name)
	res := fsm.Result{Outcome: fsm.Busy, Now: now}
	if held {
		lock.Token = fsm.Token{}
		res.Lock = lock
	}
	return res
}
