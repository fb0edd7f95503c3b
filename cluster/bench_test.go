package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// BenchmarkAcquireRelease measures acquire+release pairs through a real
// three-node loopback cluster with fsync on, at several numbers of
// concurrent proposers. Each proposer works on its own lock name, so every
// acquire is granted. Reported: pairs/s and the p50/p99 of one commit
// (one Acquire or one Release call).
func BenchmarkAcquireRelease(b *testing.B) {
	for _, proposers := range []int{1, 64} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			tc := newTestCluster(b, 3, func(c *Config) {
				c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
			})
			lead := tc.leader()
			benchPairs(b, lead, proposers)
		})
	}
}

func benchPairs(b *testing.B, lead *Node, proposers int) {
	var next atomic.Int64
	lat := make([][]time.Duration, proposers)
	var wg sync.WaitGroup
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			name := fmt.Sprintf("bench-%d", p)
			ctx := context.Background()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				r, err := lead.Acquire(ctx, AcquireRequest{Name: name, Lifetime: time.Minute})
				t1 := time.Now()
				if err != nil || r.Outcome != fsm.Granted {
					failed.Add(1)
					continue
				}
				if _, err := lead.Release(ctx, name, r.Lock.Token, ""); err != nil {
					failed.Add(1)
				}
				lat[p] = append(lat[p], t1.Sub(t0), time.Since(t1))
			}
		}(p)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d operations failed", f)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pairs/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
