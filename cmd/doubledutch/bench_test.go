package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/client/loadgen"
)

// BenchmarkHandoff measures, through the v1 API of a real three-node
// cluster, the time from a holder's release request to the grant answer
// of the client waiting for the same lock: one op is one handoff.
func BenchmarkHandoff(b *testing.B) {
	ec := startE2ECluster(b, false)
	c := ec.v1Client()
	ctx := context.Background()
	held, err := c.Acquire(ctx, "handoff", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		granted := make(chan *client.Lock, 1)
		go func() {
			l, err := c.Acquire(ctx, "handoff", client.AcquireOptions{Lifetime: time.Minute, Wait: 30 * time.Second})
			if err != nil {
				b.Error(err)
			}
			granted <- l
		}()
		b.StopTimer()
		waitUntil(b, 10*time.Second, "the waiter to queue", func() bool {
			l, err := c.Get(ctx, "handoff")
			return err == nil && l.Waiters == 1
		})
		b.StartTimer()
		start := time.Now()
		if err := c.Release(ctx, "handoff", held.Token(), ""); err != nil {
			b.Fatal(err)
		}
		if held = <-granted; held == nil {
			b.FailNow()
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkPairsHTTP measures uncontended acquire+release pairs through
// the v1 API of a real three-node cluster, driven by the load generator
// scripts/bench.sh uses (client/loadgen: one kept-alive connection per
// worker), in one process so that -cpuprofile covers all three nodes and
// the generator: one op is one pair.
func BenchmarkPairsHTTP(b *testing.B) {
	for _, workers := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ec := startE2ECluster(b, false)
			target := loadgen.Target{Endpoints: ec.urls, Key: testKey}
			b.ResetTimer()
			cpu0 := processCPU(b)
			r, err := loadgen.Run(context.Background(), target, loadgen.Cell{Scenario: loadgen.Uncontended,
				Workers: workers, Lifetime: time.Minute, Count: int64(b.N)}, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if r.Errors > 0 {
				b.Fatalf("%d pairs failed", r.Errors)
			}
			// CPU of the whole process (three nodes and the generator) per
			// pair: on a shared machine steadier than the wall clock.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
			b.ReportMetric(float64(r.P50.Microseconds())/1000, "p50-ms")
			var entries, commands uint64
			for _, n := range ec.nodes {
				e, c := n.cluster.ProposalStats()
				entries, commands = entries+e, commands+c
			}
			b.ReportMetric(float64(commands)/float64(max(entries, 1)), "cmds/entry")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPairsClient is BenchmarkPairsHTTP driven through client.Client
// instead: the difference is the Go client's own cost per pair.
func BenchmarkPairsClient(b *testing.B) {
	ec := startE2ECluster(b, false)
	c := ec.v1Client()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("pair-%d", w)
			for next.Add(1) <= int64(b.N) {
				l, err := c.Acquire(ctx, name, client.AcquireOptions{Lifetime: time.Minute})
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.Release(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}
