package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// TestRetryAfterAbandonedGrant is a targeted fault scenario. A grant that
// commits after its client gave up is released by the server (no lock is
// held for nobody, docs/design.md, Waiting for a lock); the client then retries with the
// same request id, as it must after an unknown outcome. The retry must not
// be told it holds a lock that has been released.
//
// The followers are stopped while the acquire is in flight, so the commit
// outlives the client's 500 ms timeout; the long leader lease keeps the
// leader in office meanwhile. The recorded history goes through Check.
//
// This found a real bug: the FSM answered the retry from its dedup table
// with the original grant although that grant had been released. A
// repeated grant is now answered from the lock as it is (fsm replay).
func TestRetryAfterAbandonedGrant(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario skipped in -short mode")
	}
	t.Parallel()
	dir := workDir(t)
	bin, err := BuildBinary(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	slow := 3 * time.Second
	c, err := StartCluster(runCtx(t), ClusterConfig{Bin: bin, Dir: dir, Heartbeat: slow, Election: slow, LeaderLease: slow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	leader, err := c.WaitHealthy(runCtx(t), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := abandonedGrantHistory(t, c, leader)
	r := Check(h, CheckConfig{VisualizationDir: dir})
	if len(r.Violations) == 0 {
		return
	}
	for i := range h.Ops {
		t.Log(h.Ops[i].String())
	}
	for _, v := range r.Violations {
		t.Logf("[%s] %s", v.Check, v.Message)
	}
	t.Fatal("a retry was told it holds a lock the server had released")
}

// abandonedGrantHistory runs the scenario and records it.
func abandonedGrantHistory(t *testing.T, c *Cluster, leader int) History {
	rec := NewRecorder(100 * time.Millisecond)
	eps := []string{c.nodes[leader].apiURL} // every call goes to the leader
	for i, n := range c.nodes {
		if i != leader {
			eps = append(eps, n.apiURL)
		}
	}
	cl, err := client.NewClient(client.Config{Endpoints: eps, APIKey: apiKey, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	const lifetime = 30 * time.Second
	bg := context.Background()
	acquire := Op{Client: 0, Kind: Acquire, Name: "x", Lifetime: lifetime, RequestID: "abandoned-grant-0001", Call: rec.Now()}
	for i := range c.nodes {
		if i != leader {
			_ = c.nodes[i].stop()
		}
	}
	ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
	_, err = cl.Acquire(ctx, "x", client.AcquireOptions{Lifetime: lifetime, RequestID: acquire.RequestID})
	cancel()
	t.Logf("first attempt (followers stopped): %v", err)
	time.Sleep(time.Second)
	for i := range c.nodes {
		if i != leader {
			_ = c.nodes[i].cont()
		}
	}
	time.Sleep(time.Second)
	// The retry, with the same request id, ends the logical operation.
	acquire.LastSend = rec.Now()
	g, err := cl.Acquire(bg, "x", client.AcquireOptions{Lifetime: lifetime, RequestID: acquire.RequestID})
	acquire.Return, acquire.Outcome, acquire.Attempts = rec.Now(), outcomeOf(err), 2
	if g != nil {
		acquire.Fence = g.Fence()
	}
	rec.AddOp(acquire)
	get := Op{Client: 1, Kind: Get, Name: "x", Call: rec.Now()}
	l, err := cl.Get(bg, "x")
	get.Return, get.Outcome = rec.Now(), outcomeOf(err)
	if l != nil {
		get.Fence = l.FencingToken
	}
	rec.AddOp(get)
	other := Op{Client: 2, Kind: Acquire, Name: "x", Lifetime: time.Second, Call: rec.Now()}
	o, err := cl.Acquire(bg, "x", client.AcquireOptions{Lifetime: time.Second})
	other.Return, other.Outcome = rec.Now(), outcomeOf(err)
	if o != nil {
		other.Fence = o.Fence()
	}
	rec.AddOp(other)
	return rec.History()
}

func outcomeOf(err error) Outcome {
	out, v := classify(err)
	if v == notApplied {
		return Failed
	}
	return out
}
