package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// The live checks after the faults: recovery, leftover locks of dead
// holders, a dead holder across a leader crash, and replica agreement.

// measureRecovery times, from the end of the faults, until every node
// agrees on a leader and until a fresh grant succeeds.
func (r *run) measureRecovery(ctx context.Context) {
	t0 := r.rec.Now()
	if _, err := r.c.WaitHealthy(ctx, r.cfg.RecoveryBound); err != nil {
		r.violate(CheckRecovery, "after the faults stopped, the nodes did not agree on a leader within %v", r.cfg.RecoveryBound)
	}
	r.report.RecoveryHealthy = time.Duration(r.rec.Now() - t0)
	p := r.probe()
	deadline := time.Now().Add(r.cfg.RecoveryBound)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		op := p.acquireProbe("probe-recovery", time.Second)
		if op.Outcome == OK {
			r.recoveredAt = op.Return
			r.report.RecoveryGrant = time.Duration(op.Return - t0)
			r.logf("recovered: all nodes agree after %v, first grant after %v", r.report.RecoveryHealthy, r.report.RecoveryGrant)
			return
		}
	}
	r.recoveredAt = r.rec.Now()
	r.violate(CheckRecovery, "no grant succeeded within %v after the faults stopped", r.cfg.RecoveryBound)
}

// acquireProbe acquires name for a probe, which then abandons it.
func (a *actor) acquireProbe(name string, lifetime time.Duration) Op {
	op := Op{Client: a.id, Kind: Acquire, Name: name, Lifetime: lifetime, Abandoned: true}
	a.invoke(&op, func(ctx context.Context, c *client.Client) (uint64, error) {
		l, err := c.Acquire(ctx, name, client.AcquireOptions{Lifetime: lifetime, Owner: "probe", RequestID: op.RequestID})
		if err != nil {
			return 0, err
		}
		return l.Fence(), nil
	})
	return op
}

// waitFree reads name every 100 ms until it is free or deadline passes.
// It returns the free answer's time and the last holder seen.
func (a *actor) waitFree(name string, deadline time.Time) (freeAt int64, last uint64, ok bool) {
	for time.Now().Before(deadline) {
		op := a.get(name)
		switch op.Outcome {
		case NotFound:
			return op.Return, last, true
		case OK:
			last = op.Fence
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, last, false
}

// checkLeftoverLocks: once the workload has stopped, every lock still
// held (by a dead or paused holder, or after a release of unknown
// outcome) must expire by its last lease's start (or the recovery, if
// later) + lifetime + FailoverBound.
func (r *run) checkLeftoverLocks(ctx context.Context) {
	stopped := r.rec.Now()
	h := r.rec.History()
	p := r.probe()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range r.cfg.Workload.Names {
		a := p
		if name != r.cfg.Workload.Names[0] {
			a = r.probe()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(r.cfg.Workload.MaxLifetime + r.cfg.FailoverBound + r.cfg.RecoveryBound)
			freeAt, last, ok := a.waitFree(name, deadline)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				r.violate(CheckDeadHolder, "%q was still held (#%d) %v after the workload stopped", name, last, time.Until(deadline))
				return
			}
			if last == 0 {
				return
			}
			bound := r.expiryBound(h, last, stopped)
			r.report.Leftovers = append(r.report.Leftovers, fmt.Sprintf("%s #%d free at %s (bound %s)", name, last, ms(freeAt), ms(bound)))
			if freeAt > bound {
				r.violate(CheckDeadHolder, "%q (#%d) was freed at %s, after its bound %s (lease start or recovery + lifetime + %v)",
					name, last, ms(freeAt), ms(bound), r.cfg.FailoverBound)
			}
		}()
	}
	wg.Wait()
}

// expiryBound is when the lock granted with token f must be gone: from
// the later of its last lease start and the recovery, one lifetime plus
// the failover bound. A token the history never saw granted (an acquire
// of unknown outcome) gets the longest lifetime from the workload's end.
func (r *run) expiryBound(h History, f uint64, stopped int64) int64 {
	start, life := stopped, r.cfg.Workload.MaxLifetime
	for _, o := range h.Ops {
		if o.Fence != f || (o.Kind != Acquire && o.Kind != Refresh) || (o.Outcome != OK && o.Outcome != Unknown) {
			continue
		}
		if o.Kind == Acquire && o.Outcome != OK {
			continue
		}
		if start == stopped || o.Call > start {
			start, life = o.Call, o.Lifetime
		}
	}
	return max(start, r.recoveredAt) + int64(life) + int64(r.cfg.FailoverBound)
}

// probeDeadHolder takes a lock, kills the leader at once (the holder is
// "dead" too: it never refreshes) and measures when the lock is gone.
func (r *run) probeDeadHolder(ctx context.Context) {
	const name, lifetime = "probe-dead", 2 * time.Second
	p := r.probe()
	g := p.acquireProbe(name, lifetime)
	if g.Outcome != OK {
		r.logf("dead-holder probe: acquire %s: %s (%s)", name, g.Outcome, g.Note)
		return
	}
	l := r.c.currentLeader(ctx)
	if l >= 0 {
		_ = r.c.nodes[l].kill()
		r.report.DeadHolderKilled = r.c.nodes[l].id
		_ = sleepCtx(ctx, time.Second)
		_ = r.c.nodes[l].start()
	}
	deadline := time.Now().Add(lifetime + r.cfg.FailoverBound + 10*time.Second)
	freeAt, _, ok := p.waitFree(name, deadline)
	if !ok {
		r.violate(CheckDeadHolder, "%s (#%d, lifetime %v) was still held 10 s past lifetime + failover bound", name, g.Fence, lifetime)
		return
	}
	r.report.DeadHolderLifetime = lifetime
	r.report.DeadHolderFreed = time.Duration(freeAt - g.Call)
	r.logf("dead-holder probe: %s freed %v after it was requested (leader %s killed)", name, r.report.DeadHolderFreed, r.report.DeadHolderKilled)
	if r.report.DeadHolderFreed > lifetime+r.cfg.FailoverBound {
		r.violate(CheckDeadHolder, "%s (lifetime %v) was freed only %v after it was requested, across a leader crash; bound %v",
			name, lifetime, r.report.DeadHolderFreed, lifetime+r.cfg.FailoverBound)
	}
}

// checkConvergence holds a few long locks and then waits until every
// node reports the same applied index and the same lock table.
func (r *run) checkConvergence(ctx context.Context) {
	if _, err := r.c.WaitHealthy(ctx, r.cfg.RecoveryBound); err != nil {
		r.violate(CheckConvergence, "nodes did not agree on a leader before the convergence check: %v", err)
		return
	}
	p := r.probe()
	for i := 1; i <= 3; i++ {
		p.acquireProbe(fmt.Sprintf("final-%d", i), time.Minute)
	}
	deadline := time.Now().Add(20 * time.Second)
	var last []nodeDigest
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ds := r.digests(ctx)
		if agree(ds) {
			r.report.Convergence = ds
			r.logf("converged: every node at applied index %d, digest %s", ds[0].Applied, ds[0].Digest[:16])
			return
		}
		last = ds
		time.Sleep(50 * time.Millisecond)
	}
	r.report.Convergence = last
	r.violate(CheckConvergence, "nodes never reported the same applied index and lock table within 20 s: %v", last)
}

// nodeDigest is one node's state summary at one applied index.
type nodeDigest struct {
	Node     string
	Applied  uint64
	LeaseNow int64
	Digest   string
	Err      string
}

func (d nodeDigest) String() string {
	if d.Err != "" {
		return d.Node + ": " + d.Err
	}
	return fmt.Sprintf("%s: index %d, lease_now %d ms, digest %.16s", d.Node, d.Applied, d.LeaseNow, d.Digest)
}

func agree(ds []nodeDigest) bool {
	for _, d := range ds {
		if d.Err != "" || d.Applied != ds[0].Applied || d.Digest != ds[0].Digest {
			return false
		}
	}
	return len(ds) > 0
}

// digests reads every node's state digest, in parallel.
func (r *run) digests(ctx context.Context) []nodeDigest {
	out := make([]nodeDigest, len(r.c.nodes))
	var wg sync.WaitGroup
	for i, n := range r.c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.c.digest(ctx, i)
			out[i].Node = n.id
		}()
	}
	wg.Wait()
	return out
}

// digest asks node i for the SHA-256 of its whole state (locks, lease
// clock, dedup table) and the applied index it was taken at: equal pairs
// on two nodes mean equal state.
func (c *Cluster) digest(ctx context.Context, i int) nodeDigest {
	var st struct {
		LeaseNow int64  `json:"lease_now_ms"`
		Index    uint64 `json:"digest_index"`
		Digest   string `json:"state_digest"`
	}
	if err := c.get(ctx, i, "/v1/cluster?digest=true", &st); err != nil {
		return nodeDigest{Err: err.Error()}
	}
	if st.Digest == "" {
		return nodeDigest{Err: "no state_digest in /v1/cluster"}
	}
	return nodeDigest{Applied: st.Index, LeaseNow: st.LeaseNow, Digest: st.Digest}
}
