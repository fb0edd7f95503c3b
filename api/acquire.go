package api

import (
	"context"
	"strconv"
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
	// the waiter through its turn; the recheck is only a fallback.
	recheckDelay = 100 * time.Millisecond
	// maxAttempts bounds the request ids one acquire walks through.
	maxAttempts = 1 << 16
)

// acquireParams is a validated acquire request, legacy or v1.
type acquireParams struct {
	Name      string
	Lifetime  time.Duration
	Wait      time.Duration
	Owner     string
	RequestID string
}

// acquire takes p.Name for the caller, waiting up to p.Wait in FIFO order.
// It returns a Granted result, a Busy result (not acquired in time), or an
// error. A grant whose client went away before it committed is released
// at once, so that no lock is held for nobody.
func (s *Server) acquire(ctx context.Context, p acquireParams) (fsm.Result, error) {
	res, err := s.acquireOrWait(ctx, p)
	if err == nil && res.Outcome == fsm.Granted && ctx.Err() != nil {
		s.noteAbandoned()
		s.releaseAbandoned(ctx, res.Lock)
		return fsm.Result{}, ErrClientGone
	}
	return res, err
}

// acquireOrWait proposes at once unless others wait for the name, in which
// case the request queues behind them. A request with an id still
// proposes while the lock is held: a retry may find the grant an earlier
// try got, and a fresh id cannot overtake the queue on a held lock.
func (s *Server) acquireOrWait(ctx context.Context, p acquireParams) (fsm.Result, error) {
	if !s.waits.contended(p.Name) || (p.RequestID != "" && s.held(p.Name)) {
		res, next, err := s.propose(ctx, p, 0)
		if err != nil || res.Outcome != fsm.Busy || p.Wait == 0 {
			return res, err
		}
		return s.wait(ctx, p, res.Now, next)
	}
	if p.Wait == 0 {
		return s.busyNow(p.Name), nil
	}
	now, err := s.cluster.ClusterNow()
	if err != nil {
		return fsm.Result{}, err
	}
	return s.wait(ctx, p, now, 0)
}

// wait parks the request in name's queue until its turn comes, its
// timeout passes, its client leaves or this node stops leading. arrival is
// the cluster time the request was first refused (or found a queue).
func (s *Server) wait(ctx context.Context, p acquireParams, arrival int64, attempt int) (fsm.Result, error) {
	w, err := s.waits.enqueue(ctx, p.Name)
	if err != nil {
		return fsm.Result{}, err
	}
	defer s.waits.finish(w)
	s.kickIfFree(p.Name)
	timer := time.NewTimer(p.Wait)
	defer timer.Stop()
	limit := arrival + p.Wait.Milliseconds()
	for {
		select {
		case <-w.turn:
		case <-timer.C:
			if !s.turnAtTimeout(w, p.Name) {
				if d, ok := s.extendWait(p.Name, limit); ok {
					timer.Reset(d)
					continue
				}
				// The expiry this waiter waited for may have been applied
				// between the two looks above: look once more.
				if !s.turnAtTimeout(w, p.Name) {
					return s.busyNow(p.Name), nil
				}
			}
		case <-ctx.Done():
			return fsm.Result{}, ErrClientGone // finish passes an unused turn on
		case <-w.gen.done:
			return fsm.Result{}, w.gen.err
		}
		var res fsm.Result
		res, attempt, err = s.propose(ctx, p, attempt)
		if err != nil {
			return res, err
		}
		if res.Outcome == fsm.Granted {
			s.waits.granted(w)
			return res, nil
		}
		// Busy: a request that found no queue got in first. Keep our place.
		s.waits.requeue(w)
		s.kickIfFree(p.Name)
	}
}

// turnAtTimeout consumes a turn that arrives together with the timeout:
// a waiter whose turn has come is served, not turned away. The lock may
// also be free already with its event still on the way (the expiry the
// waiter was waiting for): the waiter then kicks its queue itself.
func (s *Server) turnAtTimeout(w *waiter, name string) bool {
	if takeTurn(w) {
		return true
	}
	s.kickIfFree(name)
	return takeTurn(w)
}

func takeTurn(w *waiter) bool {
	select {
	case <-w.turn:
		return true
	default:
		return false
	}
}

// extendWait decides whether a waiter whose timeout has passed keeps
// waiting: it does while the lock's holder is due to expire by the
// waiter's own limit (arrival + timeout, cluster time) and that expiry has
// not been applied yet (docs/design.md, Waiting for a lock: "not turned
// away early"). It returns when to look again.
func (s *Server) extendWait(name string, limit int64) (time.Duration, bool) {
	lock, held, _, _ := s.cluster.StaleReadLock(name)
	if !held || lock.Deadline > limit {
		return 0, false
	}
	now, err := s.cluster.ClusterNow()
	if err != nil || now-lock.Deadline > expiryGrace.Milliseconds() {
		return 0, false
	}
	left := max(lock.Deadline-now, 0)
	return time.Duration(left)*time.Millisecond + recheckDelay, true
}

// kickIfFree hands name to its queue if the lock is free right now. A
// waiter enqueues after seeing Busy; if the lock was freed in between, no
// event will come for it, so it looks once itself. Local state suffices
// on the leader: events are delivered after the state they report.
func (s *Server) kickIfFree(name string) {
	if !s.held(name) {
		s.waits.kick(name)
	}
}

// held reports whether name is held in this node's applied state.
func (s *Server) held(name string) bool {
	_, held, _, _ := s.cluster.StaleReadLock(name)
	return held
}

// propose asks the cluster for the lock once. With a client request id,
// the n-th proposal of one request carries "id#n": the FSM remembers the
// first answer per id, and a Busy answer must not stick to later tries. A
// repeated request id answered Busy from an earlier try moves on to the
// next id at once (an earlier try may have been granted under it).
func (s *Server) propose(ctx context.Context, p acquireParams, attempt int) (fsm.Result, int, error) {
	for {
		pctx, cancel := s.proposeCtx(ctx)
		res, err := s.cluster.Acquire(pctx, cluster.AcquireRequest{
			Name: p.Name, Lifetime: p.Lifetime, Owner: p.Owner, RequestID: attemptID(p.RequestID, attempt),
		})
		cancel()
		attempt++
		if err != nil {
			return res, attempt, err
		}
		switch {
		case res.Outcome != fsm.Granted && res.Outcome != fsm.Busy:
			return fsm.Result{}, attempt, badRequest("request id %q was already used for a different request", p.RequestID)
		case res.Outcome == fsm.Busy && res.Duplicate && p.RequestID != "" && attempt < maxAttempts:
			continue
		}
		return res, attempt, nil
	}
}

// attemptID derives the request id of the n-th proposal of one request.
func attemptID(id string, n int) string {
	if id == "" || n == 0 {
		return id
	}
	return id + "#" + strconv.Itoa(n)
}

// busyNow is a Busy answer with the current holder, for a request that
// was not granted. The holder's session token is never shown.
func (s *Server) busyNow(name string) fsm.Result {
	lock, held, now, _ := s.cluster.StaleReadLock(name)
	res := fsm.Result{Outcome: fsm.Busy, Now: now}
	if held {
		lock.Token = fsm.Token{}
		res.Lock = lock
	}
	return res
}

// releaseAbandoned gives back a grant nobody will learn about.
func (s *Server) releaseAbandoned(ctx context.Context, lock fsm.Lock) {
	pctx, cancel := s.proposeCtx(ctx)
	defer cancel()
	res, err := s.cluster.Release(pctx, lock.Name, lock.Token, "")
	s.log.Info("released a grant whose client went away", "lock", lock.Name,
		"fencing_token", lock.Fence, "outcome", res.Outcome.String(), "error", err)
}
