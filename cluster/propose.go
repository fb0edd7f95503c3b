package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// Acquire proposes taking a lock. The leader draws the session token here,
// before proposing, so every replica applies the same one.
func (n *Node) Acquire(ctx context.Context, req AcquireRequest) (fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	var tok fsm.Token
	if _, err := rand.Read(tok[:]); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: drawing a token: %w", ErrNotApplied, err)
	}
	return n.propose(fsm.Command{
		Kind:      fsm.KindAcquire,
		Name:      req.Name,
		Token:     tok,
		Lifetime:  millis(req.Lifetime),
		Owner:     req.Owner,
		RequestID: req.RequestID,
	})
}

// Release proposes giving a lock back.
func (n *Node) Release(ctx context.Context, name string, token fsm.Token, requestID string) (fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	return n.propose(fsm.Command{Kind: fsm.KindRelease, Name: name, Token: token, RequestID: requestID})
}

// Refresh proposes moving a held lock's deadline to now plus lifetime.
func (n *Node) Refresh(ctx context.Context, name string, token fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	return n.propose(fsm.Command{
		Kind: fsm.KindRefresh, Name: name, Token: token, Lifetime: millis(lifetime), RequestID: requestID,
	})
}

// millis rounds up, so a lifetime is never shortened by truncation.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// propose stamps a command with the leader's clock, replicates it and
// waits for its result. The error says whether the command was certainly
// not applied (ErrNotLeader, ErrNotApplied, ErrShutdown) or may have been
// (ErrUnknownOutcome). A context cannot abandon a proposal once it is in
// the log: callers that stop caring must undo a grant themselves.
func (n *Node) propose(c fsm.Command) (fsm.Result, error) {
	select {
	case <-n.closing:
		return fsm.Result{}, ErrShutdown
	default:
	}
	if n.leading.Load() == nil {
		if n.raft.State() == raft.Leader {
			return fsm.Result{}, fmt.Errorf("%w: the leader is still starting", ErrNotApplied)
		}
		return fsm.Result{}, ErrNotLeader
	}
	stamp, err := n.clock.now()
	if err != nil {
		return fsm.Result{}, err
	}
	c.Stamp = stamp
	f := n.raft.Apply(c.Encode(), n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return fsm.Result{}, classify(err)
	}
	r, ok := f.Response().(fsm.Result)
	if !ok {
		return fsm.Result{}, fmt.Errorf("%w: unexpected FSM response %T", ErrUnknownOutcome, f.Response())
	}
	return r, nil
}

// classify sorts Raft's errors into the three outcomes of docs/design.md,
// Outcomes.
func classify(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		// Answered by a follower loop before dispatch: never in the log.
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotApplied, err)
	default:
		// ErrLeadershipLost, ErrRaftShutdown and anything unforeseen: the
		// entry may already be in a log that a later leader commits.
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
}
