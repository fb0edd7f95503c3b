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

// BenchmarkFrozenFirstEndpoint measures how long an acquire takes when
// the node a fresh client tries first is frozen (SIGSTOP): the leader,
// then a follower, seven times each, and the release after it. It reports
// the medians; README's failover table comes from it:
//
//	go test -run '^$' -bench FrozenFirstEndpoint -benchtime 1x -v ./client/
//
// DDTEST_HEDGE_AFTER (e.g. -1s: no hedging) sets the client's HedgeAfter,
// for the figure without hedging.
func BenchmarkFrozenFirstEndpoint(b *testing.B) {
	cl := ddtest.Start(b, binary)
	for range b.N {
		for _, which := range []string{"leader", "follower"} {
			var acq, rel []time.Duration
			for run := 0; run < 7; run++ {
				a, r := frozenAcquire(b, cl, which)
				acq, rel = append(acq, a), append(rel, r)
			}
			b.ReportMetric(median(b, which+" frozen: acquire", acq).Seconds(), which+"-acquire-s")
			b.ReportMetric(median(b, which+" frozen: release after", rel).Seconds(), which+"-release-s")
		}
	}
}

func median(b *testing.B, what string, took []time.Duration) time.Duration {
	slices.Sort(took)
	b.Logf("%s: median %v, min %v, max %v, all %v", what, took[len(took)/2], took[0], took[len(took)-1], took)
	return took[len(took)/2]
}

// measureTune configures the measured client: the defaults, or the
// HedgeAfter in DDTEST_HEDGE_AFTER.
func measureTune(cfg *client.Config) {
	if d, err := time.ParseDuration(os.Getenv("DDTEST_HEDGE_AFTER")); err == nil {
		cfg.HedgeAfter = d
	}
}

// frozenAcquire freezes the leader or a follower, listed first in a fresh
// client's endpoints, and times one acquire through it and the release
// after it.
func frozenAcquire(b *testing.B, cl *ddtest.Cluster, which string) (acquire, release time.Duration) {
	b.Helper()
	leader, err := cl.WaitLeader(20 * time.Second)
	if err != nil {
		b.Fatal(err)
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
	c := newClient(b, eps, measureTune)
	ctx := context.Background()
	warm, err := c.Acquire(ctx, "measure", client.AcquireOptions{Lifetime: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if err := warm.Release(ctx); err != nil {
		b.Fatal(err)
	}
	// A fresh client starts at its first endpoint (the warm one may
	// remember the leader from a redirect).
	c = newClient(b, eps, measureTune)
	cl.Freeze(frozen)
	defer cl.Thaw(frozen)
	start := time.Now()
	l, err := c.Acquire(ctx, "measure", client.AcquireOptions{Lifetime: 10 * time.Second})
	acquire = time.Since(start)
	if err != nil {
		b.Fatalf("acquire with the %s frozen: %v", which, err)
	}
	start = time.Now()
	if err := l.Release(ctx); err != nil {
		b.Fatalf("release with the %s frozen: %v", which, err)
	}
	return acquire, time.Since(start)
}
