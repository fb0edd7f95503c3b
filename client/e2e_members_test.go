package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// A node added at runtime leads: every original node redirects to it. A
// client configured with the original nodes only follows those redirects
// (the cluster reports the new node as a member) and completes an
// acquire, a read and a release there.
func TestAcquireThroughARuntimeAddedLeader(t *testing.T) {
	cl := ddtest.Start(t, binary)
	original := cl.URLs()
	added, err := cl.AddNode(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.TransferLeader(added, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, original, nil)
	ctx := context.Background()
	l, err := c.Acquire(ctx, "runtime", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatalf("acquire with a runtime-added leader: %v", err)
	}
	got, err := c.Get(ctx, "runtime")
	if err != nil || got.FencingToken != l.Fence() {
		t.Fatalf("get: %+v %v, want fence %d", got, err, l.Fence())
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := c.Get(ctx, "runtime"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after release: %v", err)
	}
	if now := cl.LeaderNow(); now != added {
		t.Fatalf("leader is node %d, not the added one: the test did not test redirects to it", now)
	}
	// The original nodes are what the client was given; it must have
	// reached the added node through them.
	for _, u := range c.Endpoints() {
		if u == cl.Nodes[added].URL {
			t.Fatal("the added node is among the configured endpoints")
		}
	}
}
