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
	c, err := acquireCommand(req)
	if err != nil {
		return fsm.Result{}, err
	}
	return n.proposeCtx(ctx, c)
}

// acquireCommand draws a fresh session token for req.
func acquireCommand(req AcquireRequest) (fsm.Command, error) {
	var tok fsm.Token
	if _, err := rand.Read(tok[:]); err != nil {
		return fsm.Command{}, fmt.Errorf("%w: drawing a token: %w", ErrNotApplied, err)
	}
	return fsm.Command{
		Kind:      fsm.KindAcquire,
		Name:      req.Name,
		Token:     tok,
		Lifetime:  millis(req.Lifetime),
		Owner:     req.Owner,
		RequestID: req.RequestID,
	}, nil
}

// Release proposes giving a lock back.
func (n *Node) Release(ctx context.Context, name string, token fsm.Token, requestID string) (fsm.Result, error) {
	return n.proposeCtx(ctx, fsm.Command{Kind: fsm.KindRelease, Name: name, Token: token, RequestID: requestID})
}

// Refresh proposes moving a held lock's deadline to now plus lifetime.
func (n *Node) Refresh(ctx context.Context, name string, token fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error) {
	return n.proposeCtx(ctx, fsm.Command{
		Kind: fsm.KindRefresh, Name: name, Token: token, Lifetime: millis(lifetime), RequestID: requestID,
	})
}

// Recall answers, from this node's applied state, what a repeat of a
// command of kind on name under requestID would be told, if that id
// already acted. It proposes nothing.
func (n *Node) Recall(kind fsm.Kind, name, requestID string) (fsm.Result, bool) {
	return n.fsm.Recall(fsm.Command{Kind: kind, Name: name, RequestID: requestID})
}

// millis rounds up, so a lifetime is never shortened by truncation.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// propose is proposeCtx without a deadline, for the leader's own ticks and
// announcements.
func (n *Node) propose(c fsm.Command) (fsm.Result, error) {
	return n.proposeCtx(context.Background(), c)
}

// proposeCtx hands a command to the group-commit proposer and waits for
// its result. The error says whether the command was certainly not
// applied (ErrNotLeader, ErrNotApplied, ErrShutdown) or may have been
// (ErrUnknownOutcome). ctx bounds the wait (issue 10 item 5): a command
// still queued when ctx ends is withdrawn (ErrNotApplied); one already
// handed to Raft cannot be, so its outcome is unknown, and a retry with
// the same request id finds out what happened.
func (n *Node) proposeCtx(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	if err := ctx.Err(); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
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
	p := &proposal{cmd: c, done: make(chan struct{})}
	n.proposer.submit(p)
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		if n.proposer.withdraw(p) {
			return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())
		}
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, ctx.Err())
	case <-n.raftStopped:
		return n.abandonAtShutdown(p)
	}
}

// abandonAtShutdown answers a proposal still waiting once Raft has shut
// down. Raft drops the futures of entries it had not answered by then (a
// committed entry its FSM loop never reached), so their Error() never
// returns, and the node's own proposers (announce, ticks), which Close
// waits for, hung Close for ever.
func (n *Node) abandonAtShutdown(p *proposal) (fsm.Result, error) {
	select {
	case <-p.done:
		return p.res, p.err
	default:
	}
	if n.proposer.withdraw(p) {
		return fsm.Result{}, ErrShutdown
	}
	return fsm.Result{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, ErrShutdown)
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
