// Package loadgen drives lock+unlock load through the v1 API and measures
// it, in the same scenarios as the etcd reference benchmark kit (not part
// of this repository; see the README's Performance section) (uncontended: each worker its own lock; contended: every worker the same
// lock), so the two can be compared side by side on one machine. It only
// talks to the endpoints it is given and every loop is bounded in time.
package loadgen

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// Scenario names.
const (
	Uncontended = "uncontended"
	Contended   = "contended"
)

// Cell is one scenario at one worker count.
type Cell struct {
	Scenario string
	Workers  int
	Warmup   time.Duration
	Duration time.Duration
	Lifetime time.Duration // lock lifetime
}

// Result is what one cell measured. A pair is one acquire (waiting in the
// contended scenario) followed by its release.
type Result struct {
	Cell
	Pairs       int64
	Errors      int64
	PairsPerSec float64
	P50, P99    time.Duration // of a whole pair
}

// String formats the result as one table row.
func (r Result) String() string {
	return fmt.Sprintf("| %s | %d | %.0f | %.1f ms | %.1f ms | %d |",
		r.Scenario, r.Workers, r.PairsPerSec, ms(r.P50), ms(r.P99), r.Errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run measures one cell with c.
func Run(ctx context.Context, c *client.Client, cell Cell, run string) (Result, error) {
	if cell.Scenario != Uncontended && cell.Scenario != Contended {
		return Result{}, fmt.Errorf("unknown scenario %q", cell.Scenario)
	}
	var (
		measuring atomic.Bool
		pairs     atomic.Int64
		errs      atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		wg        sync.WaitGroup
	)
	stop := time.Now().Add(cell.Warmup + cell.Duration)
	for w := 0; w < cell.Workers; w++ {
		name := fmt.Sprintf("load-%s-%s", run, cell.Scenario)
		if cell.Scenario == Uncontended {
			name = fmt.Sprintf("%s-%d", name, w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(stop) && ctx.Err() == nil {
				d, err := pair(ctx, c, name, cell)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					time.Sleep(10 * time.Millisecond) // back off a failing cluster
					continue
				}
				pairs.Add(1)
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(cell.Warmup)
	measuring.Store(true)
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := Result{Cell: cell, Pairs: pairs.Load(), Errors: errs.Load()}
	r.PairsPerSec = float64(r.Pairs) / elapsed.Seconds()
	r.P50, r.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	return r, ctx.Err()
}

func pair(ctx context.Context, c *client.Client, name string, cell Cell) (time.Duration, error) {
	t0 := time.Now()
	opts := client.AcquireOptions{Lifetime: cell.Lifetime}
	if cell.Scenario == Contended {
		opts.Wait = 30 * time.Second
	}
	l, err := c.Acquire(ctx, name, opts)
	if err != nil {
		return 0, err
	}
	if err := l.Release(ctx); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}
