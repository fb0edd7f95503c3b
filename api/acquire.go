package api

import (
	"context"

	"github.com/doubledutch/doubledutch/cluster/locking"
	"github.com/doubledutch/doubledutch/fsm"
)

// acquireParams is a validated acquire request, legacy or v1. The waiting
// itself lives in cluster/locking; handlers only decode, call and encode.
type acquireParams = locking.Params

// refusal turns the outcomes that are neither a grant nor "busy" into the
// error a handler answers with; it returns nil for Granted and Busy.
func refusal(res fsm.Result, requestID string) error {
	switch res.Outcome {
	case fsm.Ended:
		return newError(ErrGrantEnded, "request id %q was granted this lock with fencing token %d, and that grant has ended "+
			"(released or expired); a repeated request id never acts twice: use a new one to ask again", clip(requestID), res.Lock.Fence)
	case fsm.TooManyLocks:
		return newError(ErrTooManyLocks, "%d locks are held, the most this cluster holds; retry later", fsm.MaxLocks)
	case fsm.TooManyIDs:
		return newError(ErrTooManyIDs, "the cluster remembers %d request ids, the most it holds (%d per second over %d s); retry later",
			fsm.MaxDedup, fsm.DedupRate, fsm.DedupTTL/1000)
	}
	return nil
}

// acquire asks the waiting layer for the lock. Time the request spent
// waiting for a leader (route wrapper) is taken off its lock wait.
func (s *Server) acquire(ctx context.Context, p acquireParams) (fsm.Result, error) {
	p.Wait = max(p.Wait-leaderWaited(ctx), 0)
	return s.locks.Acquire(ctx, p)
}
