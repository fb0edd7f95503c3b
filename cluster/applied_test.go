package cluster

import (
	"context"
	"testing"
	"time"
)

// TestReadAfterMembershipChangeIsPrompt is the regression test for issue
// 8.4: the read path waits for the commit index, which a configuration
// entry moves, but the state machine counted only lock commands, so the
// first read after RemoveServer waited for the idle keepalive tick (5 s).
// With no lock held, nothing else is proposed in the meantime.
func TestReadAfterMembershipChangeIsPrompt(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	var victim string
	for _, n := range tc.live() {
		if n != lead {
			victim = n.ID()
		}
	}
	if err := lead.RemoveServer(victim); err != nil {
		t.Fatal(err)
	}
	// Far below the 5 s keepalive, far above a read's few milliseconds.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, _, _, err := lead.ReadLock(ctx, "anything"); err != nil {
		t.Fatalf("read after removing %s: %v (after %v)", victim, err, time.Since(start))
	}
}
