package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// failoverProbeEvery is how often the failover probe sends a fresh
// request to each surviving node.
const failoverProbeEvery = 100 * time.Millisecond

// failoverProbe measures how soon the cluster grants again after its
// leader was killed or stopped, apart from how long clients stay stuck on
// the dead node: from the fault on, it sends a fresh raw-HTTP /getlock
// (new connection, original API, no retries) to every other node every
// failoverProbeEvery, following redirects, and notes the first grant.
// The returned function waits until a grant came or until the time since
// start reaches limit, stops the probe, and reports the time from start
// to that grant, or -1 if none came.
func (s *schedule) failoverProbe(ctx context.Context, victim int, start time.Time) func(limit time.Duration) time.Duration {
	pctx, cancel := context.WithCancel(ctx)
	var first atomic.Int64
	first.Store(-1)
	name := fmt.Sprintf("failover-probe-%d", start.UnixNano())
	q := url.Values{"lockname": {name}, "auth": {apiKey}, "lifetime": {"1"}, "timeout": {"0"}}
	var wg sync.WaitGroup
	for i, n := range s.c.nodes {
		if i == victim {
			continue
		}
		target := n.apiURL + "/getlock?" + q.Encode()
		wg.Add(1)
		go func() {
			defer wg.Done()
			probeNode(pctx, target, start, &first, cancel)
		}()
	}
	return func(limit time.Duration) time.Duration {
		select {
		case <-pctx.Done():
		case <-time.After(time.Until(start.Add(limit))):
		}
		cancel()
		wg.Wait()
		return time.Duration(first.Load())
	}
}

// probeNode sends a request to target every failoverProbeEvery until one
// is granted (recorded in first, if it is the first) or ctx ends.
func probeNode(ctx context.Context, target string, start time.Time, first *atomic.Int64, done func()) {
	tick := time.NewTicker(failoverProbeEvery)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && first.CompareAndSwap(-1, int64(time.Since(start))) {
				done()
			}
		}()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
