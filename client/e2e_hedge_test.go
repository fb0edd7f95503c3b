package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// The leader frozen (SIGSTOP: its sockets accept and never answer) while
// the client starts there: with the default HedgeAfter the acquire is
// hedged to a follower, which leads to the new leader, and the call
// completes well inside the attempt timeout, with one grant whose fence
// is above the one before. Then the release, also past the frozen node.
func TestAcquireAndReleasePastAFrozenLeader(t *testing.T) {
	cl := ddtest.Start(t, binary)
	leader, _ := cl.WaitLeader(10 * time.Second)
	fs := followersFirst(cl, leader)
	eps := append([]string{cl.Nodes[leader].URL}, fs[:len(fs)-1]...)
	c := newClient(t, eps, nil)
	ctx := context.Background()
	before, err := c.Acquire(ctx, "frozen", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := before.Release(ctx); err != nil {
		t.Fatal(err)
	}

	cl.Freeze(leader)
	t.Cleanup(func() { cl.Thaw(leader) })
	start := time.Now()
	l, err := c.Acquire(ctx, "frozen", client.AcquireOptions{Lifetime: time.Minute, Owner: "hedged"})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("acquire with the leader frozen: %v", err)
	}
	// Generous: the hedge goes out after 1 s and a new leader is elected
	// about 1 s after the freeze; a loaded machine may add some.
	if took >= client.DefaultAttemptTimeout*4/5 {
		t.Fatalf("acquire took %v: not well inside the attempt timeout (%v)", took, client.DefaultAttemptTimeout)
	}
	t.Logf("acquire with the leader frozen took %v", took)
	if l.Fence() <= before.Fence() {
		t.Fatalf("fence %d after %d: not increasing", l.Fence(), before.Fence())
	}
	got, err := c.Get(ctx, "frozen")
	if err != nil || got.FencingToken != l.Fence() || got.Owner != "hedged" {
		t.Fatalf("holder %+v %v, want our grant (fence %d)", got, err, l.Fence())
	}
	start = time.Now()
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release with the leader frozen: %v", err)
	}
	if took := time.Since(start); took >= client.DefaultAttemptTimeout*4/5 {
		t.Fatalf("release took %v", took)
	}
	if _, err := c.Get(ctx, "frozen"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after release: %v (a second grant?)", err)
	}
}
