package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

func (ec *e2eCluster) v1Client() *client.Client {
	return client.New(ec.urls, testKey, ec.tlsConf)
}

// waitForWaiters polls the lock until the leader reports n waiters for it.
func waitForWaiters(t *testing.T, c *client.Client, name string, n int) {
	t.Helper()
	waitUntil(t, 10*time.Second, "waiters queued", func() bool {
		l, err := c.Get(context.Background(), name)
		return err == nil && l.Waiters == n
	})
}

func TestWaitersAreServedInFIFOOrder(t *testing.T) {
	ec := startE2ECluster(t, false)
	c := ec.v1Client()
	ctx := context.Background()
	holder, err := c.Acquire(ctx, "fifo", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 10
	type grant struct {
		who  int
		lock *client.Lock
		at   time.Time
	}
	grants := make(chan grant, waiters)
	for i := 0; i < waiters; i++ {
		go func(i int) {
			l, err := c.Acquire(ctx, "fifo", client.AcquireOptions{Lifetime: time.Minute, Wait: 30 * time.Second})
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				grants <- grant{who: -1}
				return
			}
			grants <- grant{who: i, lock: l, at: time.Now()}
		}(i)
		// Queue them one at a time, so their order is known.
		waitForWaiters(t, c, "fifo", i+1)
	}
	var handoffs []time.Duration
	prevToken, prevFence := holder.Token(), holder.Fence()
	for want := 0; want < waiters; want++ {
		released := time.Now()
		if err := c.Release(ctx, "fifo", prevToken, ""); err != nil {
			t.Fatalf("release before waiter %d: %v", want, err)
		}
		g := <-grants
		if g.who != want {
			t.Fatalf("waiter %d got the lock; want waiter %d (FIFO)", g.who, want)
		}
		if g.lock.Fence() <= prevFence {
			t.Fatalf("fencing token %d not above %d", g.lock.Fence(), prevFence)
		}
		handoffs = append(handoffs, g.at.Sub(released))
		prevToken, prevFence = g.lock.Token(), g.lock.Fence()
	}
	sort.Slice(handoffs, func(i, j int) bool { return handoffs[i] < handoffs[j] })
	t.Logf("release-to-next-grant handoff over %d waiters: p50 %v max %v", waiters, handoffs[waiters/2], handoffs[waiters-1])
}

func TestDisconnectedWaiterIsNeverGranted(t *testing.T) {
	ec := startE2ECluster(t, false)
	c := ec.v1Client()
	ctx := context.Background()
	holder, err := c.Acquire(ctx, "gone", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, hangUp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Acquire(waitCtx, "gone", client.AcquireOptions{Lifetime: time.Minute, Wait: 30 * time.Second})
		done <- err
	}()
	waitForWaiters(t, c, "gone", 1)
	hangUp()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("hung-up waiter: %v", err)
	}
	if err := c.Release(ctx, "gone", holder.Token(), ""); err != nil {
		t.Fatal(err)
	}
	// Nobody is waiting any more, so the lock must end up free (at once,
	// or after the leader undoes a grant it had already proposed).
	waitUntil(t, 5*time.Second, "the lock to be free", func() bool {
		_, err := c.Get(ctx, "gone")
		return errors.Is(err, client.ErrNotFound)
	})
	l, err := c.Acquire(ctx, "gone", client.AcquireOptions{Lifetime: time.Second})
	if err != nil || l.Fence() <= holder.Fence() {
		t.Fatalf("a new client cannot take the abandoned lock: %v %v", l, err)
	}
}

// After a burst of writes every node reports the same state digest at the
// same applied index.
func TestNodesConvergeOnOneDigest(t *testing.T) {
	ec := startE2ECluster(t, false)
	c := ec.v1Client()
	for i := 0; i < 20; i++ {
		if _, err := c.Acquire(context.Background(), fmt.Sprintf("d-%d", i), client.AcquireOptions{Lifetime: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	type view struct {
		Index  uint64 `json:"digest_index"`
		Digest string `json:"state_digest"`
	}
	waitUntil(t, 10*time.Second, "one digest on every node", func() bool {
		var first view
		for i, u := range ec.urls {
			code, m, _ := ec.do(ec.client, "GET", u+"/v1/cluster?digest=true", nil, "Authorization", "Bearer "+testKey)
			if code != 200 {
				return false
			}
			v := view{Index: uint64(m["digest_index"].(float64)), Digest: m["state_digest"].(string)}
			if i == 0 {
				first = v
			} else if v != first {
				return false
			}
		}
		return first.Digest != ""
	})
}
