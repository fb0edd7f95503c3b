package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
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
