// Package locking is the waiting layer between the HTTP API and the
// cluster: FIFO queues of requests waiting for a lock, handing a freed lock
// to the head waiter in the same commit that frees it, timeouts that stretch
// to a holder's applied expiry, grants whose client left, request ids and
// refusals decided from the leader's applied state without proposing.
//
// api decodes a request, calls Acquire, Release or Refresh, and encodes
// the answer; everything about waiting lives here (docs/design.md,
// Waiting for a lock).
package locking

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// Errors of the waiting layer; api maps them to statuses.
var (
	// ErrTooManyWaiters: the waiting bound of the node or the name is
	// reached.
	ErrTooManyWaiters = errors.New("too many requests are waiting")
	// ErrLeaderChanged: leadership moved while the request waited. It
	// comes wrapped together with cluster.ErrNotLeader in a RetryError.
	ErrLeaderChanged = errors.New("leadership changed while waiting; retry")
	// ErrClientGone: the request's context ended; nobody reads the answer.
	ErrClientGone = errors.New("the client went away")
)

// Cluster is what the waiting layer needs from the replicated core;
// *cluster.Node satisfies it.
type Cluster interface {
	Acquire(ctx context.Context, req cluster.AcquireRequest) (fsm.Result, error)
	Release(ctx context.Context, name string, token fsm.Token, requestID string) (fsm.Result, error)
	Refresh(ctx context.Context, name string, token fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error)
	// StaleReadLock reads this node's applied state.
	StaleReadLock(name string) (lock fsm.Lock, held bool, now int64, staleness time.Duration)
	// Recall answers a repeated request id from applied state.
	Recall(kind fsm.Kind, name, requestID string) (fsm.Result, bool)
	ClusterNow() (int64, error)
	Leader() cluster.LeaderInfo
	Subscribe(fn func(cluster.Event)) (cancel func())
	// SetHandoff installs the hook the proposer asks for next holders.
	SetHandoff(h cluster.Handoff)
}

// Config bounds the waiting layer.
type Config struct {
	// MaxWaiters bounds the waiting requests at this node.
	MaxWaiters int
	// MaxWaitersPerName bounds the waiting requests for one name.
	MaxWaitersPerName int
	// ProposeTimeout bounds each proposal (detached from the client, so
	// a client that hangs up does not turn a proposal into an unknown
	// outcome; an abandoned grant is released instead).
	ProposeTimeout time.Duration
	// OnAbandoned, when set, is called once for every grant released
	// because its client went away (for metrics). It must not block.
	OnAbandoned func()
}

// Params is one acquire.
type Params struct {
	Name     string
	Lifetime time.Duration
	// Wait is how long the request may wait for a busy lock.
	Wait      time.Duration
	Owner     string
	RequestID string // assigned when empty
}

// Service is the waiting layer of one node. Build it with New, end it with
// Close.
type Service struct {
	c     Cluster
	cfg   Config
	log   hclog.Logger
	waits *waitSet
	unsub func()
	// abandons orders releases of abandoned grants against retries.
	abandons *abandonRegistry
}

// New builds the waiting layer on c, subscribes to its events and installs
// itself as c's handoff. log may be nil.
func New(c Cluster, cfg Config, log hclog.Logger) *Service {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Service{c: c, cfg: cfg, log: log, abandons: newAbandonRegistry()}
	s.waits = newWaitSet(cfg.MaxWaiters, cfg.MaxWaitersPerName, s.releaseAbandoned)
	s.unsub = c.Subscribe(s.onEvent)
	c.SetHandoff(s.waits)
	// Read leadership after subscribing, so no change is missed between.
	s.waits.setLeader(c.Leader().IsSelf)
	return s
}

// Close ends every waiting request with cluster.ErrShutdown and refuses
// new waiters. Requests that need no wait are still served.
func (s *Service) Close() {
	s.c.SetHandoff(nil)
	s.unsub()
	s.waits.close(cluster.ErrShutdown)
}

// Waiters is the number of requests waiting for name at this node.
func (s *Service) Waiters(name string) int { return s.waits.count(name) }

// Size is the number of requests waiting at this node.
func (s *Service) Size() int { return s.waits.size() }

func (s *Service) onEvent(ev cluster.Event) {
	switch ev.Kind {
	case cluster.EventFreed:
		s.waits.freed(ev.Names)
	case cluster.EventLeadership:
		if ev.IsLeader {
			s.waits.setLeader(true)
		} else {
			s.waits.lostLeadership()
		}
	}
}

// proposeCtx bounds one proposal by ProposeTimeout, detached from the
// client's cancellation.
func (s *Service) proposeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProposeTimeout)
}

// Backoff between tries of a command that was not applied at a node
// that still leads (proposeHere).
const (
	retryFirstPause = 5 * time.Millisecond
	retryMaxPause   = 100 * time.Millisecond
)

// proposeHere runs propose (one proposal under a fixed request id) and,
// while it answers "certainly not applied" and this node still leads,
// proposes again after a short pause, until ctx (one ProposeTimeout) ends.
// Those answers are passing states of a leader: an entry refused for a
// stamp of an earlier term after leadership was lost and won back, a
// leader still starting, a real stall being verified. Answered 503, they
// failed requests of a burst on a healthy cluster (TestOriginalSuite);
// retried under the same id they can never act twice. A node that no
// longer leads returns the error at once, for the API to carry the
// request to the new leader. The ProposeTimeout stays the bound on a
// sustained overload: a command still queued when it ends is withdrawn
// and answered 503, and an unknown outcome is never retried here.
func (s *Service) proposeHere(ctx context.Context, propose func(context.Context) (fsm.Result, error)) (fsm.Result, error) {
	pause := retryFirstPause
	for {
		res, err := propose(ctx)
		if !errors.Is(err, cluster.ErrNotApplied) || errors.Is(err, cluster.ErrUnknownOutcome) ||
			ctx.Err() != nil || !s.c.Leader().IsSelf {
			return res, err
		}
		s.log.Debug("not applied at the leader; proposing again", "error", err, "pause", pause)
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return res, err
		case <-timer.C:
		}
		pause = min(2*pause, retryMaxPause)
	}
}

// NewRequestID draws a request id for a request that came without one, so
// that every proposal can be retried safely (issue 10 item 2).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Release gives a lock back. A release that cannot succeed (this leader's
// applied state shows the lock free or held under another token) is
// refused without proposing: a token that does not hold a lock now can
// never come to hold it, because tokens are drawn fresh for each grant
// and a client learns its token only after the grant is applied at the
// leader (issue 8 item 5). A repeat of a release that did act is answered
// from the dedup table.
func (s *Service) Release(ctx context.Context, name string, tok fsm.Token, requestID string) (fsm.Result, error) {
	if res, ok := s.refuseLocally(fsm.KindRelease, name, tok, requestID); ok {
		return res, nil
	}
	if requestID == "" {
		requestID = NewRequestID()
	}
	pctx, cancel := s.proposeCtx(ctx)
	defer cancel()
	res, err := s.proposeHere(pctx, func(ctx context.Context) (fsm.Result, error) {
		return s.c.Release(ctx, name, tok, requestID)
	})
	return res, retryable(err, requestID, 0)
}

// Refresh extends a held lock; like Release, a refresh that cannot succeed
// is refused from applied state.
func (s *Service) Refresh(ctx context.Context, name string, tok fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error) {
	if res, ok := s.refuseLocally(fsm.KindRefresh, name, tok, requestID); ok {
		return res, nil
	}
	if requestID == "" {
		requestID = NewRequestID()
	}
	pctx, cancel := s.proposeCtx(ctx)
	defer cancel()
	res, err := s.proposeHere(pctx, func(ctx context.Context) (fsm.Result, error) {
		return s.c.Refresh(ctx, name, tok, lifetime, requestID)
	})
	return res, retryable(err, requestID, 0)
}

// refuseLocally answers a release or refresh whose token does not hold the
// lock in this leader's applied state: from the dedup table for a repeat
// of one that acted, NotHeld otherwise. Only a ready leader decides so.
func (s *Service) refuseLocally(kind fsm.Kind, name string, tok fsm.Token, requestID string) (fsm.Result, bool) {
	if !s.c.Leader().IsSelf {
		return fsm.Result{}, false
	}
	lock, held, now, _ := s.c.StaleReadLock(name)
	if held && lock.Token.Equal(tok) {
		return fsm.Result{}, false
	}
	if requestID != "" {
		if res, ok := s.c.Recall(kind, name, requestID); ok {
			return res, true
		}
	}
	return fsm.Result{Outcome: fsm.NotHeld, Now: now}, true
}

// RetryError is returned when a request gave up because leadership was
// lost or its outcome is unknown: it matches the cluster sentinel
// (errors.Is) and tells a redirect how to carry the request to the next
// leader: under the same request id (so a first proposal that did commit
// is answered, never repeated) and with the wait that remains.
type RetryError struct {
	err       error
	requestID string
	remaining time.Duration
}

func (e *RetryError) Error() string { return e.err.Error() }

// Unwrap exposes the cluster sentinel.
func (e *RetryError) Unwrap() error { return e.err }

// RetryRequestID is the request id to retry under.
func (e *RetryError) RetryRequestID() string { return e.requestID }

// RemainingWait is what is left of the request's wait.
func (e *RetryError) RemainingWait() time.Duration { return e.remaining }

// retryable wraps an error that a retry at another leader may resolve.
func retryable(err error, requestID string, remaining time.Duration) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrNotApplied) || errors.Is(err, cluster.ErrUnknownOutcome) {
		return &RetryError{err: err, requestID: requestID, remaining: max(remaining, 0)}
	}
	return err
}

// errLeaderChanged ends a waiter whose node stopped leading.
var errLeaderChanged = fmt.Errorf("%w: %w", ErrLeaderChanged, cluster.ErrNotLeader)
