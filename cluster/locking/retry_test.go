package locking

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// refusing is a real node whose first proposals are refused "certainly
// not applied", as a leader refuses an entry stamped in an earlier term of
// its own, or a stamp while it verifies a stall.
type refusing struct {
	*cluster.Node
	left atomic.Int32
	err  error
}

func (r *refusing) refuse() error {
	if r.left.Add(-1) >= 0 {
		return r.err
	}
	return nil
}

func (r *refusing) Acquire(ctx context.Context, req cluster.AcquireRequest) (fsm.Result, error) {
	if err := r.refuse(); err != nil {
		return fsm.Result{}, err
	}
	return r.Node.Acquire(ctx, req)
}

func (r *refusing) Release(ctx context.Context, name string, tok fsm.Token, id string) (fsm.Result, error) {
	if err := r.refuse(); err != nil {
		return fsm.Result{}, err
	}
	return r.Node.Release(ctx, name, tok, id)
}

// A command that was certainly not applied at a node that still leads is
// proposed again under the same request id, not answered 503; an unknown
// outcome never is.
func TestNotAppliedAtTheLeaderIsProposedAgain(t *testing.T) {
	_, lead := startCluster(t, 3)
	notApplied := fmt.Errorf("%w: stamped in an earlier term of this leader", cluster.ErrNotApplied)
	c := &refusing{Node: lead, err: notApplied}
	s := newService(t, c)
	ctx := context.Background()
	c.left.Store(3)
	res, err := s.Acquire(ctx, Params{Name: "a", Lifetime: time.Minute})
	if err != nil || res.Outcome != fsm.Granted {
		t.Fatalf("acquire after three refusals: %+v %v", res, err)
	}
	c.left.Store(2)
	if rel, err := s.Release(ctx, "a", res.Lock.Token, ""); err != nil || rel.Outcome != fsm.Released {
		t.Fatalf("release after two refusals: %+v %v", rel, err)
	}

	c.err = fmt.Errorf("%w: %w", cluster.ErrUnknownOutcome, errors.New("leadership lost while committing log"))
	c.left.Store(1)
	if _, err := s.Acquire(ctx, Params{Name: "b", Lifetime: time.Minute}); !errors.Is(err, cluster.ErrUnknownOutcome) {
		t.Fatalf("unknown outcome: %v, want it answered as unknown", err)
	}
	if c.left.Load() != 0 {
		t.Fatal("an unknown outcome was proposed again")
	}
}

// The retries end with the request's ProposeTimeout: a leader that keeps
// refusing (a sustained overload) is still answered "not applied".
func TestNotAppliedRetriesEndWithTheProposeTimeout(t *testing.T) {
	_, lead := startCluster(t, 3)
	c := &refusing{Node: lead, err: fmt.Errorf("%w: leader clock stalled", cluster.ErrNotApplied)}
	c.left.Store(1 << 30)
	s := New(c, Config{MaxWaiters: 10, MaxWaitersPerName: 10, ProposeTimeout: 300 * time.Millisecond}, testLogger(t))
	t.Cleanup(s.Close)
	start := time.Now()
	_, err := s.Acquire(context.Background(), Params{Name: "c", Lifetime: time.Minute})
	if !errors.Is(err, cluster.ErrNotApplied) || errors.Is(err, cluster.ErrUnknownOutcome) {
		t.Fatalf("sustained refusal: %v, want not applied", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("gave up after %v, want about the 300 ms ProposeTimeout", d)
	}
}
