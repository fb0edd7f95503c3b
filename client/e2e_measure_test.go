package client_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// TestMeasureFrozenFirstEndpoint measures (it asserts nothing) how long
// an acquire takes when the node the client tries first is frozen
// (SIGSTOP): the leader, then a follower. It runs only with
// DDTEST_MEASURE=1; README's failover figures come from it:
//
//	DDTEST_MEASURE=1 go test -count=1 -run TestMeasureFrozenFirstEndpoint -v ./client/
func TestMeasureFrozenFirstEndpoint(t *testing.T) {
	if os.Getenv("DDTEST_MEASURE") == "" {
		t.Skip("a measurement: set DDTEST_MEASURE=1")
	}
	cl := ddtest.Start(t, binary)
	for _, which := range []string{"leader", "follower"} {
		var acq, rel []time.Duration
		for run := 0; run < 7; run++ {
			a, r := frozenAcquire(t, cl, which)
			acq, rel = append(acq, a), append(rel, r)
		}
		logMedian(t, "first endpoint frozen ("+which+"): acquire", acq)
		logMedian(t, "first endpoint frozen ("+which+"): the release after it", rel)
	}
}

func logMedian(t *testing.T, what string, took []time.Duration) {
	slices.Sort(took)
	t.Logf("%s: median %v, min %v, max %v, all %v", what, took[len(took)/2], took[0], took[len(took)-1], took)
}

// frozenAcquire freezes the leader or a follower, listed first in a fresh
// client's endpoints, and times one acquire through it and the release
// after it.
func frozenAcquire(t *testing.T, cl *ddtest.Cluster, which string) (acquire, release time.Duration) {
	t.Helper()
	leader, err := cl.WaitLeader(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eps := followersFirst(cl, leader)
	frozen := leader
	if which == "leader" {
		eps = append(eps[len(eps)-1:], eps[:len(eps)-1]...)
	} else {
		frozen = (leader + 1) % len(cl.Nodes)
		eps = []string{cl.Nodes[frozen].URL}
		for i, n := range cl.Nodes {
			if i != frozen {
				eps = append(eps, n.URL)
			}
		}
	}
	c := newClient(t, eps, measureTune)
	ctx := context.Background()
	warm, err := c.Acquire(ctx, "measure", client.AcquireOptions{Lifetime: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A fresh client starts at its first endpoint (the warm one may
	// remember the leader from a redirect).
	c = newClient(t, eps, measureTune)
	cl.Freeze(frozen)
	defer cl.Thaw(frozen)
	start := time.Now()
	l, err := c.Acquire(ctx, "measure", client.AcquireOptions{Lifetime: 10 * time.Second})
	acquire = time.Since(start)
	if err != nil {
		t.Fatalf("acquire with the %s frozen: %v", which, err)
	}
	start = time.Now()
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release with the %s frozen: %v", which, err)
	}
	return acquire, time.Since(start)
}
