// Package loadgen drives lock+unlock load through the v1 API and measures
// it, in the same scenarios as the etcd reference benchmark kit (not part
// of this repository; see the README's Performance section) (uncontended: each worker its own lock; contended: every worker the same
// lock), so the two can be compared side by side on one machine. It only
// talks to the endpoints it is given and every loop is bounded in time.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	// Count, when positive, ends the cell after that many pairs in all
	// (benchmarks: one op per pair) instead of after Duration.
	Count int64
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

// Run measures one cell against t. run tells this run's lock names apart
// from earlier runs'.
func Run(ctx context.Context, t Target, cell Cell, run string) (Result, error) {
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
	conns := make([]*conn, cell.Workers)
	for w := range conns {
		c, err := newConn(t)
		if err != nil {
			return Result{}, err
		}
		conns[w] = c
	}
	stop := time.Now().Add(cell.Warmup + cell.Duration)
	more := func() bool {
		if cell.Count > 0 {
			return pairs.Add(1) <= cell.Count
		}
		return time.Now().Before(stop)
	}
	for w, c := range conns {
		name := fmt.Sprintf("load-%s-%s", run, cell.Scenario)
		if cell.Scenario == Uncontended {
			name = fmt.Sprintf("%s-%d", name, w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			w := newPairer(c, name, cell)
			var mine []time.Duration
			for more() && ctx.Err() == nil {
				d, err := w.pair(ctx)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					time.Sleep(10 * time.Millisecond) // back off a failing cluster
					continue
				}
				if cell.Count <= 0 {
					pairs.Add(1)
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	if cell.Count > 0 {
		measuring.Store(true) // no warm-up: every pair counts
	} else {
		time.Sleep(cell.Warmup)
		measuring.Store(true)
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := Result{Cell: cell, Pairs: pairs.Load(), Errors: errs.Load()}
	if cell.Count > 0 {
		r.Pairs = int64(len(lat))
	}
	r.PairsPerSec = float64(r.Pairs) / elapsed.Seconds()
	r.P50, r.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	return r, ctx.Err()
}

// contendedWait is how long a contended acquire waits for the lock.
const contendedWait = 30 * time.Second

// pairer makes one worker's pairs: a v1 acquire (with a wait in the
// contended scenario), then the release of what it granted, each with a
// fresh request id.
type pairer struct {
	c        *conn
	path     string
	wait     time.Duration
	lifetime time.Duration
	body     []byte
	grant    struct {
		SessionToken string `json:"session_token"`
	}
}

func newPairer(c *conn, name string, cell Cell) *pairer {
	p := &pairer{c: c, path: "/v1/locks/" + url.PathEscape(name), lifetime: cell.Lifetime}
	if cell.Scenario == Contended {
		p.wait = contendedWait
	}
	return p
}

func (p *pairer) pair(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	b := append(p.body[:0], `{"request_id":"`...)
	b = p.c.requestID(b)
	b = append(b, '"')
	if p.lifetime > 0 {
		b = append(b, `,"lifetime":`...)
		b = strconv.AppendFloat(b, p.lifetime.Seconds(), 'g', -1, 64)
	}
	if p.wait > 0 {
		b = append(b, `,"wait":`...)
		b = strconv.AppendFloat(b, p.wait.Seconds(), 'g', -1, 64)
	}
	p.body = append(b, '}')
	out, err := p.c.call(ctx, "POST", p.path, p.body, p.wait)
	if err != nil {
		return 0, err
	}
	p.grant.SessionToken = ""
	if err := json.Unmarshal(out, &p.grant); err != nil || p.grant.SessionToken == "" {
		return 0, fmt.Errorf("loadgen: acquire answer without a session token: %q", out)
	}
	b = append(p.body[:0], `{"token":"`...)
	b = append(b, p.grant.SessionToken...)
	b = append(b, `","request_id":"`...)
	b = p.c.requestID(b)
	p.body = append(b, `"}`...)
	if _, err := p.c.call(ctx, "DELETE", p.path, p.body, 0); err != nil {
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
