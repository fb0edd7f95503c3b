package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestLongTickIsNotAStall is the regression test for issue 8.3: with the
// original's "p 3000" (a 3 s tick) the clock goroutine beat only every 3 s,
// past the 2 s stall threshold, so requests were refused as "clock
// stalled". The beat now follows the stall threshold, not the tick.
func TestLongTickIsNotAStall(t *testing.T) {
	tc := newTestCluster(t, 1, func(c *Config) { c.TickInterval = 3 * time.Second })
	lead := tc.leader()
	end := time.Now().Add(2*lead.cfg.StallThreshold + time.Second)
	pace := time.NewTicker(300 * time.Millisecond) // paces requests like the report's client
	defer pace.Stop()
	for i := 0; time.Now().Before(end); i++ {
		_, err := lead.Acquire(context.Background(), AcquireRequest{Name: fmt.Sprintf("l%d", i), Lifetime: time.Minute})
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		<-pace.C
	}
}

// TestSlowCommitIsNotAStall: commits slower than the stall threshold (a
// burst queued ahead of a tick, a slow fsync) are not a paused leader.
// The expiry driver used to wait for its own tick to commit, so it missed
// its beats and the next stamp was refused "clock stalled": a 503 for
// every command of that entry, on a healthy cluster.
func TestSlowCommitIsNotAStall(t *testing.T) {
	var slow atomic.Bool
	const delay = 3 * MinStallThreshold
	tc := newTestCluster(t, 3, func(c *Config) {
		c.StallThreshold = MinStallThreshold
		c.TickInterval = 20 * time.Millisecond // a tick is always in flight
		// Followers store entries slowly; heartbeats (no entries) bypass
		// this filter, so the leader keeps its lease.
		c.interceptRPC = func(rpc raft.RPC) bool {
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && len(req.Entries) > 0 && slow.Load() {
				time.Sleep(delay)
			}
			return false
		}
	})
	tc.acquire("held", time.Hour) // held locks make the leader tick
	lead := tc.leader()
	slow.Store(true)
	defer slow.Store(false)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				req := AcquireRequest{Name: fmt.Sprintf("w%d-%d", w, i), Lifetime: time.Minute}
				if _, err := lead.Acquire(context.Background(), req); err != nil {
					errs <- fmt.Errorf("%s: %w", req.Name, err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("acquire during slow commits: %v", err)
	}
}

func TestClockSettingsAreBounded(t *testing.T) {
	base := Config{NodeID: "a", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"tick at the bound", func(c *Config) { c.TickInterval = MaxTickInterval }, true},
		{"tick too long", func(c *Config) { c.TickInterval = MaxTickInterval + 1 }, false},
		{"stall too short", func(c *Config) { c.StallThreshold = MinStallThreshold - 1 }, false},
		{"stall too long", func(c *Config) { c.StallThreshold = MaxStallThreshold + 1 }, false},
	} {
		c := base
		tc.mod(&c)
		c.setDefaults()
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
