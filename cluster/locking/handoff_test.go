package locking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

type outcome struct {
	res fsm.Result
	err error
}

// enqueue starts an acquire that waits and returns once it is queued.
func enqueue(t *testing.T, ctx context.Context, s *Service, p Params) <-chan outcome {
	t.Helper()
	before := s.Waiters(p.Name)
	ch := make(chan outcome, 1)
	go func() {
		res, err := s.Acquire(ctx, p)
		ch <- outcome{res, err}
	}()
	waitFor(t, "the request to queue", func() bool { return s.Waiters(p.Name) == before+1 })
	return ch
}

func await(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(15 * time.Second):
		t.Fatal("timed out waiting for an answer")
		return outcome{}
	}
}

// Issue 11: a release hands the lock to the head waiter in the same
// commit: the release and the next grant carry the same log index, the
// grants go in FIFO order, and fences increase.
func TestReleaseHandsOverInOneCommit(t *testing.T) {
	_, lead := startCluster(t, 3)
	s := newService(t, lead)
	ctx := context.Background()
	holder, err := s.Acquire(ctx, Params{Name: "q", Lifetime: time.Minute, Owner: "holder"})
	if err != nil || holder.Outcome != fsm.Granted {
		t.Fatalf("holder: %+v %v", holder, err)
	}
	var waiters []<-chan outcome
	for i := 0; i < 5; i++ {
		waiters = append(waiters, enqueue(t, ctx, s, Params{Name: "q", Lifetime: time.Minute, Wait: 20 * time.Second, Owner: fmt.Sprintf("w%d", i)}))
	}
	cur := holder.Lock
	var owners []string
	for i, ch := range waiters {
		rel, err := s.Release(ctx, "q", cur.Token, "")
		if err != nil || rel.Outcome != fsm.Released {
			t.Fatalf("release %d: %+v %v", i, rel, err)
		}
		o := await(t, ch)
		if o.err != nil || o.res.Outcome != fsm.Granted {
			t.Fatalf("waiter %d: %+v %v", i, o.res, o.err)
		}
		if o.res.Index != rel.Index {
			t.Errorf("waiter %d granted at index %d, its release at %d: two commits", i, o.res.Index, rel.Index)
		}
		if o.res.Lock.Fence <= cur.Fence {
			t.Errorf("waiter %d fenced %d after %d", i, o.res.Lock.Fence, cur.Fence)
		}
		owners = append(owners, o.res.Lock.Owner)
		cur = o.res.Lock
	}
	if want := []string{"w0", "w1", "w2", "w3", "w4"}; !slices.Equal(owners, want) {
		t.Fatalf("grant order %v, want %v", owners, want)
	}
}

// An expiry hands the lock over in the entry that expires it: the
// waiter's grant is the command that reports the holder freed.
func TestExpiryHandsOverInTheSameEntry(t *testing.T) {
	_, lead := startCluster(t, 3)
	s := newService(t, lead)
	ctx := context.Background()
	if r, err := s.Acquire(ctx, Params{Name: "e", Lifetime: 300 * time.Millisecond}); err != nil || r.Outcome != fsm.Granted {
		t.Fatalf("holder: %+v %v", r, err)
	}
	w := enqueue(t, ctx, s, Params{Name: "e", Lifetime: time.Minute, Wait: 20 * time.Second, Owner: "w"})
	o := await(t, w)
	if o.err != nil || o.res.Outcome != fsm.Granted || o.res.Lock.Owner != "w" {
		t.Fatalf("waiter: %+v %v", o.res, o.err)
	}
	if !slices.Contains(o.res.Freed, "e") {
		t.Errorf("the grant did not ride in the entry that expired the holder: freed %v", o.res.Freed)
	}
}

// A waiter whose client left is skipped by the handoff; the next one is
// granted in the release's commit.
func TestHandoffSkipsWaiterWhoseClientLeft(t *testing.T) {
	_, lead := startCluster(t, 3)
	s := newService(t, lead)
	ctx := context.Background()
	holder, _ := s.Acquire(ctx, Params{Name: "g", Lifetime: time.Minute})
	gone, cancel := context.WithCancel(ctx)
	a := enqueue(t, gone, s, Params{Name: "g", Lifetime: time.Minute, Wait: 20 * time.Second, Owner: "a"})
	b := enqueue(t, ctx, s, Params{Name: "g", Lifetime: time.Minute, Wait: 20 * time.Second, Owner: "b"})
	cancel()
	if o := await(t, a); !errors.Is(o.err, ErrClientGone) {
		t.Fatalf("gone waiter: %+v %v", o.res, o.err)
	}
	rel, _ := s.Release(ctx, "g", holder.Lock.Token, "")
	o := await(t, b)
	if o.err != nil || o.res.Lock.Owner != "b" || o.res.Index != rel.Index {
		t.Fatalf("b: %+v %v (release at %d)", o.res, o.err, rel.Index)
	}
}

// A waiter whose leader steps down gives up with a RetryError that matches
// cluster.ErrNotLeader and carries its request id and remaining wait, so a
// redirect can carry it to the next leader (issue 10 item 2).
func TestWaiterAtDeposedLeaderGetsRetryError(t *testing.T) {
	_, lead := startCluster(t, 3)
	s := newService(t, lead)
	ctx := context.Background()
	if r, err := s.Acquire(ctx, Params{Name: "d", Lifetime: time.Minute}); err != nil || r.Outcome != fsm.Granted {
		t.Fatalf("holder: %+v %v", r, err)
	}
	w := enqueue(t, ctx, s, Params{Name: "d", Lifetime: time.Minute, Wait: 20 * time.Second})
	go func() { _ = lead.Close() }() // a graceful close hands leadership over
	o := await(t, w)
	var re interface {
		RetryRequestID() string
		RemainingWait() time.Duration
	}
	if !errors.Is(o.err, cluster.ErrNotLeader) || !errors.As(o.err, &re) {
		t.Fatalf("deposed waiter: %v", o.err)
	}
	if len(re.RetryRequestID()) < 16 || re.RemainingWait() <= 0 || re.RemainingWait() > 20*time.Second {
		t.Fatalf("retry id %q, remaining %v", re.RetryRequestID(), re.RemainingWait())
	}
}
