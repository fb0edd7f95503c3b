package cluster

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// A single node on a full disk cannot store its own entries, so each
// election it wins ends at once. It must not spin through elections at
// the election timeout: with the disk full it slows its own elections.
func TestFullDiskDampsElectionChurn(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	tc := newTestCluster(t, 1, func(c *Config) {
		c.DataDir = filepath.Join(mnt, c.NodeID)
		c.DiskCheckInterval = 20 * time.Millisecond
	})
	n := tc.leader()
	tc.acquire("before", time.Hour)
	var elected atomic.Int32 // leaderships that became ready: none expected
	cancel := n.Subscribe(func(e Event) {
		if e.Kind == EventLeadership && e.IsLeader {
			elected.Add(1)
		}
	})
	defer cancel()
	fillDisk(t, mnt)
	// One write to find out that the disk is full.
	_, _ = n.Acquire(context.Background(), AcquireRequest{Name: "during", Lifetime: time.Hour})
	start, term0 := elected.Load(), n.raft.CurrentTerm()
	// An observation window: the assertion is how many elections fit in it.
	time.Sleep(3 * time.Second)
	term1 := n.raft.CurrentTerm()
	t.Logf("elections won in 3 s on a full disk: %d, terms %d -> %d", elected.Load()-start, term0, term1)
	if term1-term0 > 1 {
		t.Fatalf("%d elections in 3 s on a full disk: the churn is not damped", term1-term0)
	}
	// With space again the timing is restored and the node leads again.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	tc.acquire("after", time.Hour)
}
