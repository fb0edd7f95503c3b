package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// AcquireOptions tune an acquire. Zero values take the server defaults.
type AcquireOptions struct {
	// Lifetime of the lock; 0: the server's default (30 s).
	Lifetime time.Duration
	// Wait is how long to wait in the lock's FIFO queue while it is held.
	Wait time.Duration
	// Owner is a label shown to readers.
	Owner string
	// RequestID identifies the acquire; one is drawn when empty. Retries
	// of this call reuse it. To repeat a call that ended in
	// ErrUnknownOutcome, pass RequestID and FirstSent from its
	// *UnknownOutcomeError.
	RequestID string
	// FirstSent is when a call with this RequestID was first sent, when
	// this call repeats one: the grant may have been stamped as early as
	// that, so the deadline is counted from it. Zero: this call is the
	// first with the id.
	FirstSent time.Time
	// KeepAlive refreshes the lock at about a third of its lifetime until
	// it is released or lost. It runs independently of the context given
	// to Acquire: call Release to stop it.
	KeepAlive bool
}

// Lock is a held lock. Its methods are safe for concurrent use.
//
// Deadline is a moment before which the cluster cannot have expired the
// lock, however leaders change; Lost closes when that promise runs out.
// The argument: the cluster's lease clock is advanced only by a leader,
// from its monotonic clock, and never counts time without a leader, so it
// runs no faster than real time (up to the leader clock's rate error). A
// grant or refresh is stamped with a reading of that clock taken after the
// request reached the leader, hence after this client sent its first
// attempt (retries carry the same request id and are answered with the
// first grant), and the lock expires only when the clock has moved a full
// lifetime L past the stamp. So the lock lives at least L/(1+e) of real
// time after the first attempt was sent, e being the rate error. The
// handle measures from that send with this machine's monotonic clock and
// stops ClockRateError*L short, which covers both clocks' rate errors. A
// refresh never moves the cluster's deadline earlier, so each successful
// refresh moves Deadline to the later of the two. A call that repeats an
// earlier one's request id must say when that one was first sent
// (AcquireOptions.FirstSent): its grant may date from then. A grant that
// came late (after a long wait) leaves less than a lifetime before
// Deadline; with KeepAlive, Acquire refreshes it before returning.
//
// What no lease can do is stop a process that is paused (GC, swap, a
// stopped VM or a suspended laptop, whose monotonic clock stands still)
// from acting after the deadline: pass Fence to the protected resource.
type Lock struct {
	c        *Client
	name     string
	token    string
	info     LockInfo
	lifetime time.Duration

	mu       sync.Mutex
	deadline time.Time
	lastSent time.Time // first send of the grant or of the last good refresh
	lost     chan struct{}
	err      error // why lost; nil while held
	timer    *time.Timer
	stop     context.CancelFunc // ends the keepalive; nil without one
	keepDone chan struct{}
}

// Acquire takes a lock, waiting up to opts.Wait for it. ErrBusy when it
// stays held. Answers that are not applied are retried with jittered
// backoff, answers of unknown outcome with the same request id.
func (c *Client) Acquire(ctx context.Context, name string, opts AcquireOptions) (*Lock, error) {
	reqID := orNewID(opts.RequestID)
	sent := time.Now() // no stamp of this request can precede it
	var out lockJSON
	err := c.call(ctx, request{method: http.MethodPost, path: lockPath(name), out: &out, wait: opts.Wait,
		mutating: true, requestID: reqID, body: func(wait time.Duration) any {
			return acquireBody(opts, reqID, wait)
		}})
	if err != nil {
		return nil, err
	}
	l := &Lock{c: c, name: name, token: out.SessionToken, info: *out.info(), lifetime: opts.Lifetime,
		lost: make(chan struct{})}
	if l.lifetime <= 0 || (l.info.Lifetime > 0 && l.info.Lifetime < l.lifetime) {
		l.lifetime = l.info.Lifetime
	}
	if l.lifetime <= 0 { // the API always says; without it no deadline is known
		return nil, fmt.Errorf("doubledutch: the grant of %s carries no lifetime", name)
	}
	if !opts.FirstSent.IsZero() && opts.FirstSent.Before(sent) {
		sent = opts.FirstSent
	}
	l.deadline, l.lastSent = l.deadlineFrom(sent, &l.info), sent
	if opts.KeepAlive && time.Until(l.deadline) < l.lifetime*2/3 {
		if err := l.reanchor(ctx); err != nil {
			return nil, err
		}
	}
	l.mu.Lock() // expire may run at once, if the deadline has passed
	l.timer = time.AfterFunc(time.Until(l.deadline), l.expire)
	l.mu.Unlock()
	if opts.KeepAlive {
		kctx, stop := context.WithCancel(context.Background())
		l.stop, l.keepDone = stop, make(chan struct{})
		go l.keepAlive(kctx)
	}
	return l, nil
}

func acquireBody(opts AcquireOptions, reqID string, wait time.Duration) map[string]any {
	body := map[string]any{"request_id": reqID}
	if opts.Lifetime > 0 {
		body["lifetime"] = opts.Lifetime.Seconds()
	}
	if wait > 0 {
		body["wait"] = wait.Seconds()
	}
	if opts.Owner != "" {
		body["owner"] = opts.Owner
	}
	return body
}

// reanchor refreshes a grant that came late (after a long wait, the
// deadline counted from the first send is near or past) before the handle
// is handed out, as the keepalive would at once, so that the handle is
// not born lost.
func (l *Lock) reanchor(ctx context.Context) error {
	sent := time.Now()
	info, err := l.c.refresh(ctx, l.name, l.token, l.lifetime, "", l.attemptTimeout())
	switch {
	case errors.Is(err, ErrNotHeld) || errors.Is(err, ErrNotFound):
		return &lostError{why: "granted, but expired before the grant could be confirmed"}
	case err != nil && !time.Now().Before(l.deadline):
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.attemptTimeout())
		defer cancel()
		_ = l.c.Release(rctx, l.name, l.token, "")
		return fmt.Errorf("doubledutch: granted after waiting, but not confirmed before its deadline: %w", err)
	case err != nil:
		return nil // the first anchor stands; the keepalive retries
	}
	l.deadline, l.lastSent = l.deadlineFrom(sent, info), sent
	return nil
}

// deadlineFrom is the deadline of a grant or refresh first sent at sent:
// sent + min(lifetime, expires_in) shortened by the clock-rate margin
// (see Lock). expires_in, when the answer has it, can only shorten it.
func (l *Lock) deadlineFrom(sent time.Time, info *LockInfo) time.Time {
	span := l.lifetime
	if info.expirySet && info.ExpiresIn < span {
		span = info.ExpiresIn
	}
	span -= time.Duration(float64(max(span, 0)) * l.c.cfg.ClockRateError)
	return sent.Add(span)
}

// attemptTimeout of a refresh: several attempts must fit between the
// keepalive's refresh at a third of the lifetime and the deadline.
func (l *Lock) attemptTimeout() time.Duration {
	return max(min(l.c.cfg.AttemptTimeout, l.lifetime/6), 20*time.Millisecond)
}

// Name is the lock's name.
func (l *Lock) Name() string { return l.name }

// Fence is the lock's fencing token: pass it to the protected resource
// with every write, and let the resource refuse lower ones.
func (l *Lock) Fence() uint64 { return l.info.FencingToken }

// Token is the session token that proves ownership (for Client.Release
// and Client.Refresh). It is a secret: never log it.
func (l *Lock) Token() string { return l.token }

// Info is the lock as the cluster described it when it was granted.
func (l *Lock) Info() LockInfo { return l.info }

// Lifetime is the lock's lifetime; refreshes ask for the same.
func (l *Lock) Lifetime() time.Duration { return l.lifetime }

// Deadline is when the handle stops promising that the lock is held:
// strictly before the cluster can expire it (see Lock).
func (l *Lock) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Lost is closed at Deadline unless a refresh moved it, when a refresh is
// refused, and when the lock is released.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err is nil while the lock is held; after Lost closed it says why: it
// matches ErrReleased after Release, ErrLockLost otherwise.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// markLost closes Lost with err, once. Callers hold l.mu.
func (l *Lock) markLost(err error) {
	if l.err != nil {
		return
	}
	l.err = err
	close(l.lost)
	if l.timer != nil {
		l.timer.Stop()
	}
}

// expire runs at the deadline; a refresh may have moved it since the
// timer was set, in which case it waits again.
func (l *Lock) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if left := time.Until(l.deadline); left > 0 {
		l.timer.Reset(left)
		return
	}
	l.markLost(&lostError{why: "deadline passed without a successful refresh"})
}

// Refresh extends the lock by its lifetime and moves Deadline. A refresh
// the cluster refuses (the lock expired or was released) loses the
// handle. Once lost, a handle stays lost: Refresh then returns Err.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	err, deadline := l.err, l.deadline
	l.mu.Unlock()
	if err != nil {
		return err
	}
	// No point past the deadline: the handle is lost by then anyway.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	sent := time.Now()
	info, err := l.c.refresh(ctx, l.name, l.token, l.lifetime, "", l.attemptTimeout())
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(err, ErrNotHeld) || errors.Is(err, ErrNotFound) {
		l.markLost(&lostError{why: "refresh refused: " + err.Error()})
		return l.err
	}
	if err != nil {
		return err
	}
	if l.err != nil {
		return l.err
	}
	if d := l.deadlineFrom(sent, info); d.After(l.deadline) {
		l.deadline, l.lastSent = d, sent
	}
	return nil
}

// keepAlive refreshes at a third of the lifetime after the last good
// refresh was sent, retrying failures until the handle is lost.
func (l *Lock) keepAlive(ctx context.Context) {
	defer close(l.keepDone)
	failures := 0
	for {
		l.mu.Lock()
		next := l.lastSent.Add(l.lifetime / 3)
		l.mu.Unlock()
		if failures > 0 {
			next = time.Now().Add(jitter(failures))
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.lost:
			t.Stop()
			return
		case <-t.C:
		}
		if err := l.Refresh(ctx); err != nil {
			failures++
		} else {
			failures = 0
		}
	}
}

// Release stops the keepalive, closes Lost (Err then matches
// ErrReleased, unless the handle was lost before) and gives the lock
// back. It may be called after the handle was lost: the cluster may still
// hold the lock; it then answers ErrNotHeld if it does not.
func (l *Lock) Release(ctx context.Context) error {
	if l.stop != nil {
		l.stop()
		<-l.keepDone
	}
	l.mu.Lock()
	l.markLost(ErrReleased)
	l.mu.Unlock()
	return l.c.Release(ctx, l.name, l.token, "")
}

// WithLock acquires name with a keepalive, runs fn with a context that
// ends when the lock is lost (or ctx ends), and releases the lock when fn
// returns. If the lock was lost while fn ran, the error matches
// ErrLockLost even when fn returned nil: fn's work may have outlived it.
func (c *Client) WithLock(ctx context.Context, name string, opts AcquireOptions, fn func(ctx context.Context, l *Lock) error) error {
	opts.KeepAlive = true
	l, err := c.Acquire(ctx, name, opts)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(ctx)
	watch := make(chan struct{})
	go func() {
		select {
		case <-l.Lost():
			cancel()
		case <-watch:
		}
	}()
	ferr := fn(fctx, l)
	close(watch)
	cancel()
	lostErr := l.Err() // before Release marks it released
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AttemptTimeout)
	defer rcancel()
	rerr := l.Release(rctx)
	if lostErr != nil {
		return errors.Join(lostErr, ferr)
	}
	if ferr != nil {
		return ferr
	}
	return rerr
}
