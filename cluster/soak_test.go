package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSoakElections runs 64 workers acquiring and releasing locks on
// a three-node loopback cluster with the production Raft timeouts and
// fsync on, with no faults, for DD_SOAK (default 60 s), and reports how
// many elections happened after the first leader was ready (goal: none).
// It reports rather than asserts: a count under the CPU load of a shared
// machine is a measurement. Run it alone:
//
//	go test -run '^$' -bench BenchmarkSoakElections -benchtime 1x ./cluster/
func BenchmarkSoakElections(b *testing.B) {
	soak := 60 * time.Second
	if v := os.Getenv("DD_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("DD_SOAK: %v", err)
		}
		soak = d
	}
	production := func(c *Config) { c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 0, 0, 0 }
	for i := 0; i < b.N; i++ {
		tc := newTestCluster(b, 3, production)
		lead := tc.leader()
		term := lead.State().Term
		var elections atomic.Int64
		for _, n := range tc.live() {
			cancel := n.Subscribe(func(ev Event) {
				if ev.Kind == EventLeadership && ev.IsLeader {
					elections.Add(1)
				}
			})
			b.Cleanup(cancel)
		}
		ops, failed := soakWorkers(tc, 64, soak)
		final := tc.leader().State().Term
		b.ReportMetric(float64(elections.Load()), "elections")
		b.ReportMetric(float64(final-term), "term-changes")
		b.ReportMetric(float64(ops)/soak.Seconds(), "ops/s")
		b.ReportMetric(float64(failed), "failed-ops")
		b.Logf("soak %v, 64 workers: %d elections, term %d -> %d, %d ops, %d failed", soak, elections.Load(), term, final, ops, failed)
		tc.closeAll()
	}
}

// soakWorkers runs workers acquire/release loops against whichever node
// leads, for d, and returns the operations done and failed.
func soakWorkers(tc *testCluster, workers int, d time.Duration) (ops, failed int64) {
	var nOps, nFailed atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("soak-%d", w)
			ctx := context.Background()
			for time.Now().Before(stop) {
				lead := leaderOf(tc)
				if lead == nil {
					nFailed.Add(1)
					time.Sleep(10 * time.Millisecond) // no leader: a worker pauses, as a client would
					continue
				}
				r, err := lead.Acquire(ctx, AcquireRequest{Name: name, Lifetime: time.Minute})
				nOps.Add(1)
				if err != nil {
					nFailed.Add(1)
					continue
				}
				if _, err := lead.Release(ctx, name, r.Lock.Token, ""); err != nil {
					nFailed.Add(1)
				}
				nOps.Add(1)
			}
		}(w)
	}
	wg.Wait()
	return nOps.Load(), nFailed.Load()
}

// leaderOf is the live node that leads, or nil.
func leaderOf(tc *testCluster) *Node {
	for _, n := range tc.live() {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}
