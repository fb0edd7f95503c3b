package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// A call is run as legs: attempts of the same request (same request id,
// same body but for the wait left), each to one endpoint and along its
// redirects. Normally one leg is in flight at a time and a failed one is
// followed by another after a short backoff, as a plain retry loop would.
// When every leg in flight has had no response headers for HedgeAfter
// (after the lock wait it asked the server for), the node each waits on
// becomes suspect (for as long as that leg hangs there: redirects to it
// are not followed while another endpoint may answer) and one more leg
// goes to an endpoint that is neither suspect nor already asked: a frozen
// node costs HedgeAfter, not AttemptTimeout. The first definite answer of any leg is
// the call's; a call that gets none reports what its legs together say
// (unknown if any may have acted). docs/design.md, "The Go client",
// argues why this keeps outcomes honest.

// callRun is one call's state, owned by its loop goroutine except for
// the fields under mu, which legs update as their hops progress.
type callRun struct {
	c       *Client
	r       request
	ctx     context.Context // the caller's
	start   time.Time
	budget  time.Time // no new leg after this (RetryFor plus the wait)
	results chan legResult
	wake    chan struct{} // a leg began a hop or got an answer
	ending  bool          // the caller's context ended: no new legs
	settled atomic.Bool   // the call has its answer: legs left stop at a redirect

	attempts int   // legs launched
	unknown  bool  // some leg of a mutating call may have acted
	last     error // the last leg's error

	mu      sync.Mutex
	pending []*leg // legs in flight, oldest first
}

// leg is one attempt in flight.
type leg struct {
	run        *callRun
	remembered *string // the leader pointer it started from, if any
	cancel     context.CancelFunc
	waitEnd    time.Time // until when the server may legitimately hold it
	// base is the base URL of the node its current hop went to; only
	// its own goroutine writes it, before sending its result.
	base string

	// Guarded by run.mu.
	hop      string    // origin of the node it waits on
	hopStart time.Time // when that hop was sent
	heard    bool      // that hop's response headers arrived
	hedged   bool      // a hedge was already sent because this hop hung
}

type legResult struct {
	leg  *leg
	body []byte
	err  error
}

// unfollowedError is a redirect not followed for now, though it may be
// later: it points to a node that hung on this call while another
// endpoint may answer, or to a host whose membership could not be
// checked. Nothing was applied through it; it matches ErrUnavailable.
type unfollowedError struct{ to, why string }

func (e *unfollowedError) Error() string {
	return fmt.Sprintf("doubledutch: not following a redirect to %s: %s", e.to, e.why)
}

func (e *unfollowedError) Is(target error) bool { return target == ErrUnavailable }

// errSettled stops a leg left over after the call got its answer, at
// its next hop.
var errSettled = errors.New("doubledutch: the call already has its answer")

// call runs r's legs until a definite answer, the retry budget (RetryFor
// plus r.wait), MaxAttempts or ctx's end.
func (c *Client) call(ctx context.Context, r request) error {
	run := &callRun{c: c, r: r, ctx: ctx, start: time.Now(),
		// Legs in flight never outnumber the endpoints (canLaunch), so a
		// leg's result never blocks, even after the loop returned.
		results: make(chan legResult, len(c.endpoints)+1),
		wake:    make(chan struct{}, 1)}
	run.budget = run.start.Add(r.wait + c.cfg.RetryFor)
	if _, err := run.launch(false); err != nil {
		return err
	}
	return run.loop()
}

// loop waits for the legs' results, the next retry and the next hedge.
func (run *callRun) loop() error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var retryAt time.Time // zero: no retry scheduled
	done := run.ctx.Done()
	for {
		timer.Reset(run.untilNext(retryAt))
		select {
		case res := <-run.results:
			if settled, err := run.land(res); settled {
				return err
			}
			if retryAt.IsZero() && !run.scheduleRetry(&retryAt, res.err) {
				return giveUp(run.ctx, run.r, run.start, run.last, run.unknown)
			}
		case <-timer.C:
			if !retryAt.IsZero() && !time.Now().Before(retryAt) {
				retryAt = time.Time{}
				launched, err := run.launch(false)
				if err != nil {
					run.settle(false)
					return err
				}
				if !launched && run.inFlight() == 0 {
					return giveUp(run.ctx, run.r, run.start, run.last, run.unknown)
				}
			}
			if run.hedgeDue() {
				run.hedge()
			}
		case <-run.wake:
		case <-done:
			// Cancel what is in flight and collect what it says: a leg
			// sent may have acted.
			done, run.ending, retryAt = nil, true, time.Time{}
			run.cancelPending()
			if run.inFlight() == 0 {
				return giveUp(run.ctx, run.r, run.start, run.last, run.unknown)
			}
		}
	}
}

// land takes a leg's result. It reports whether the call is settled, and
// with what.
func (run *callRun) land(res legResult) (bool, error) {
	run.drop(res.leg)
	err := res.err
	if err == nil && run.r.out != nil {
		err = json.Unmarshal(res.body, run.r.out)
	}
	if err == nil {
		// Only the leader answers a leader-served request: start the
		// next calls there, past a hung endpoint listed before it.
		if !run.r.anyNode {
			base := res.leg.base
			run.c.leader.Store(&base)
		}
		run.settle(run.r.mutating)
		return true, nil
	}
	v := classify(err)
	if v == definite {
		run.settle(false)
		return true, err
	}
	// The remembered leader failed: forget it, so that the next leg asks
	// the endpoints, which redirect to whoever leads now.
	if res.leg.remembered != nil {
		run.c.leader.CompareAndSwap(res.leg.remembered, nil)
	}
	run.unknown = run.unknown || (run.r.mutating && v == maybe)
	run.last = err
	return false, nil
}

// settle marks the call answered. Legs still in flight are cancelled,
// except after a mutating call's success (keep), where they run out on
// their own attempt timeouts, their answers dropped: a leg cancelled
// while the leader handles it counts as a client gone away, and the
// server gives back a grant whose client left (cluster/locking,
// abandon.go) unless a repeat claimed it. That repeat may be the very
// leg that won, so a cancelled loser could release the winner's grant.
func (run *callRun) settle(keep bool) {
	run.settled.Store(true)
	if !keep {
		run.cancelPending()
	}
}

func (run *callRun) cancelPending() {
	run.mu.Lock()
	defer run.mu.Unlock()
	for _, l := range run.pending {
		l.cancel()
	}
}

// scheduleRetry sets when to launch the next leg after one failed with
// err. It reports false when the call must give up now: no leg is in
// flight and none may be launched. A leg that ended at a redirect it did
// not follow, while another still waits, is retried at the hedging pace,
// not the backoff's: a leader that is only slow would otherwise have its
// followers polled every few milliseconds by every client until it
// answers.
func (run *callRun) scheduleRetry(at *time.Time, err error) bool {
	pause := jitter(run.attempts - 1)
	var uErr *unfollowedError
	if errors.As(err, &uErr) && run.inFlight() > 0 {
		pause = max(pause, run.c.cfg.HedgeAfter)
	}
	if run.ending || run.ctx.Err() != nil || !run.canLaunch(time.Now().Add(pause)) {
		return run.inFlight() > 0
	}
	*at = time.Now().Add(pause)
	return true
}

// canLaunch reports whether a leg may be launched at t: within the budget
// and MaxAttempts, and with fewer legs in flight than endpoints.
func (run *callRun) canLaunch(t time.Time) bool {
	max := run.c.cfg.MaxAttempts
	return !run.ending && !t.After(run.budget) && (max <= 0 || run.attempts < max) &&
		run.inFlight() < len(run.c.endpoints)
}

func (run *callRun) inFlight() int {
	run.mu.Lock()
	defer run.mu.Unlock()
	return len(run.pending)
}

// untilNext is the time until the earlier of the retry and the hedge.
func (run *callRun) untilNext(retryAt time.Time) time.Duration {
	next := run.hedgeAt()
	if !retryAt.IsZero() && (next.IsZero() || retryAt.Before(next)) {
		next = retryAt
	}
	if next.IsZero() {
		return time.Hour // a leg's result or the context wakes the loop
	}
	return max(time.Until(next), 0)
}

// launch starts a leg at the endpoint pick chooses; hedge says it is a
// hedge (which needs an endpoint neither suspect nor asked). It reports
// whether a leg was launched.
func (run *callRun) launch(hedge bool) (bool, error) {
	if !run.canLaunch(time.Now()) {
		return false, nil
	}
	ep, remembered, ok := run.pick(hedge)
	if !ok {
		return false, nil
	}
	wait := max(run.r.wait-time.Since(run.start), 0)
	var payload []byte
	if run.r.body != nil {
		var err error
		if payload, err = json.Marshal(run.r.body(wait)); err != nil {
			return false, err
		}
	}
	timeout := run.c.cfg.AttemptTimeout
	if run.r.attemptTimeout > 0 {
		timeout = run.r.attemptTimeout
	}
	// Detached from the caller's context: the loop cancels legs when it
	// ends, but a leg left after a success must outlive it (settle).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(run.ctx), timeout+wait)
	now := time.Now()
	l := &leg{run: run, remembered: remembered, cancel: cancel, waitEnd: now.Add(wait), base: ep}
	run.mu.Lock()
	l.hop, l.hopStart = originOf(ep), now
	run.pending = append(run.pending, l)
	run.mu.Unlock()
	run.attempts++
	go l.fly(ctx, ep+run.r.path, payload)
	return true, nil
}

func (l *leg) fly(ctx context.Context, u string, payload []byte) {
	defer l.cancel()
	body, err := l.run.c.do(ctx, l.run.r.method, u, payload, l)
	l.run.results <- legResult{leg: l, body: body, err: err}
}

// drop removes a leg that landed from those in flight.
func (run *callRun) drop(l *leg) {
	run.mu.Lock()
	defer run.mu.Unlock()
	for i, p := range run.pending {
		if p == l {
			run.pending = append(run.pending[:i], run.pending[i+1:]...)
			return
		}
	}
}

func originOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return origin(u)
}
