package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// WorkloadConfig shapes the clients.
type WorkloadConfig struct {
	Clients int      // default 8
	Names   []string // default lock-a, lock-b, lock-c
	// Lifetimes are drawn from [MinLifetime, MaxLifetime] (default 1-3 s).
	MinLifetime, MaxLifetime time.Duration
	// Margin is the holders' safety margin (default 100 ms).
	Margin time.Duration
	// AttemptTimeout bounds one HTTP attempt beyond its wait (default
	// 2.5 s); OpBudget bounds all attempts of one operation (default 10 s).
	AttemptTimeout, OpBudget time.Duration
}

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.Clients == 0 {
		c.Clients = 8
	}
	if len(c.Names) == 0 {
		c.Names = []string{"lock-a", "lock-b", "lock-c"}
	}
	if c.MinLifetime == 0 {
		c.MinLifetime = time.Second
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 3 * time.Second
	}
	if c.Margin == 0 {
		c.Margin = 100 * time.Millisecond
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 2500 * time.Millisecond
	}
	if c.OpBudget == 0 {
		c.OpBudget = 10 * time.Second
	}
	return c
}

// Workload is the set of clients working on the cluster.
type Workload struct {
	cfg   WorkloadConfig
	rec   *Recorder
	res   *Resource
	pool  *clientPool
	pause []atomic.Bool // per client: pause on the next grant
	seed  int64
}

// NewWorkload prepares cfg.Clients clients of the nodes at urls.
func NewWorkload(cfg WorkloadConfig, rec *Recorder, res *Resource, urls []string, seed int64) *Workload {
	cfg = cfg.withDefaults()
	return &Workload{cfg: cfg, rec: rec, res: res, pool: newClientPool(urls),
		pause: make([]atomic.Bool, cfg.Clients), seed: seed}
}

// clientPool holds one API client per node. The clients never retry (every
// attempt is the harness's, so it is recorded), and a client whose attempt
// failed is replaced: client.Client sends each call to the leader it was
// last redirected to, and with retries off it would never leave a leader
// that has since died, stopped or been cut off.
type clientPool struct {
	urls []string
	mu   sync.Mutex
	cs   []*client.Client
}

func newClientPool(urls []string) *clientPool {
	p := &clientPool{urls: urls, cs: make([]*client.Client, len(urls))}
	for i := range urls {
		p.cs[i] = p.fresh(i)
	}
	return p
}

func (p *clientPool) fresh(i int) *client.Client {
	// Its own node first: with one attempt per call, that is the node
	// every call goes to (or the leader it redirects to, which must be
	// one of the configured endpoints).
	eps := append([]string{p.urls[i]}, p.urls[:i]...)
	eps = append(eps, p.urls[i+1:]...)
	c, err := client.NewClient(client.Config{Endpoints: eps, APIKey: apiKey, MaxAttempts: 1})
	if err != nil {
		panic(err) // the harness's own URLs
	}
	return c
}

func (p *clientPool) get(i int) *client.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cs[i]
}

// reset forgets the leader old remembered, unless another caller already
// replaced it.
func (p *clientPool) reset(i int, old *client.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs[i] == old {
		p.cs[i] = p.fresh(i)
	}
}

// RequestPause makes client c pause past its lifetime after its next
// grant (the in-process stand-in for SIGSTOP of a client).
func (w *Workload) RequestPause(c int) { w.pause[c%len(w.pause)].Store(true) }

// Run runs the clients until ctx ends and their current cycle is done.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Clients; i++ {
		a := &actor{w: w, id: i, rng: mrand.New(mrand.NewSource(w.seed*1000 + int64(i))), ep: i % len(w.pool.urls)}
		wg.Add(1)
		go func() { defer wg.Done(); a.loop(ctx) }()
	}
	wg.Wait()
}

// actor is one client. It is sequential: one operation at a time.
type actor struct {
	w   *Workload
	id  int
	rng *mrand.Rand
	ep  int // endpoint it tries first: the last that answered
}

func (a *actor) loop(ctx context.Context) {
	for ctx.Err() == nil {
		name := a.w.cfg.Names[a.rng.Intn(len(a.w.cfg.Names))]
		if a.rng.Float64() < 0.1 {
			a.get(name)
		} else {
			a.cycle(name)
		}
		time.Sleep(time.Duration(10+a.rng.Intn(40)) * time.Millisecond)
	}
}

func (a *actor) lifetime() time.Duration {
	span := a.w.cfg.MaxLifetime - a.w.cfg.MinLifetime
	return a.w.cfg.MinLifetime + time.Duration(a.rng.Int63n(int64(span)/int64(time.Millisecond)+1))*time.Millisecond
}

// cycle acquires name and then holds and releases it, dies holding it,
// or pauses past its lifetime and tries a stale write.
func (a *actor) cycle(name string) {
	lifetime := a.lifetime()
	var wait time.Duration
	if a.rng.Float64() < 0.4 {
		wait = time.Duration(100+a.rng.Intn(1400)) * time.Millisecond
	}
	paused := a.w.pause[a.id].Swap(false)
	dies := !paused && a.rng.Float64() < 0.05
	op := Op{Client: a.id, Kind: Acquire, Name: name, Lifetime: lifetime, Wait: wait, Paused: paused, Abandoned: dies}
	var token string
	a.invoke(&op, func(ctx context.Context, c *client.Client) (uint64, error) {
		l, err := c.Acquire(ctx, name, client.AcquireOptions{Lifetime: lifetime, Wait: wait,
			Owner: fmt.Sprintf("c%d", a.id), RequestID: op.RequestID})
		if err != nil {
			return 0, err
		}
		token = l.Token()
		return l.Fence(), nil
	})
	if op.Outcome != OK {
		if paused {
			a.w.pause[a.id].Store(true) // pause on the next grant instead
		}
		return
	}
	h := &holding{a: a, name: name, token: token, fence: op.Fence,
		believe: op.Call + int64(lifetime) - int64(a.w.cfg.Margin)}
	h.write()
	switch {
	case dies:
		return
	case paused:
		h.pauseAndWriteStale(op.Call + int64(lifetime))
	default:
		h.holdAndRelease(lifetime)
	}
}

// holding is a granted lock as its holder sees it.
type holding struct {
	a       *actor
	name    string
	token   string
	fence   uint64
	believe int64 // believes it holds the lock until then
}

// write writes the token to the fenced resource, if the holder still
// believes it holds the lock: a careful client does not write otherwise.
func (h *holding) write() {
	if h.a.w.rec.Now() < h.believe {
		h.a.w.res.Write(h.a.id, h.name, h.fence, true, false)
	}
}

func (h *holding) holdAndRelease(lifetime time.Duration) {
	h.sleepWithinBelief(time.Duration(h.a.rng.Int63n(int64(lifetime) / 2)))
	if h.a.rng.Float64() < 0.5 && h.a.w.rec.Now() < h.believe {
		h.refresh(h.a.lifetime())
		h.sleepWithinBelief(time.Duration(h.a.rng.Intn(300)) * time.Millisecond)
	}
	h.release()
}

func (h *holding) sleepWithinBelief(d time.Duration) {
	left := time.Duration(h.believe - h.a.w.rec.Now())
	time.Sleep(max(min(d, left), 0))
}

// pauseAndWriteStale stops acting until well past the lease's end, then
// writes with the old token as a paused process would, and releases.
func (h *holding) pauseAndWriteStale(leaseEnd int64) {
	extra := time.Duration(1000+h.a.rng.Intn(1000)) * time.Millisecond
	time.Sleep(time.Duration(leaseEnd-h.a.w.rec.Now()) + extra)
	h.a.w.res.Write(h.a.id, h.name, h.fence, false, true)
	h.release()
}

func (h *holding) refresh(lifetime time.Duration) {
	op := Op{Client: h.a.id, Kind: Refresh, Name: h.name, Fence: h.fence, Lifetime: lifetime}
	h.a.invoke(&op, func(ctx context.Context, c *client.Client) (uint64, error) {
		_, err := c.Refresh(ctx, h.name, h.token, lifetime, op.RequestID)
		return h.fence, err
	})
	if op.Outcome == OK {
		h.believe = op.Call + int64(lifetime) - int64(h.a.w.cfg.Margin)
		h.write()
	} else if op.Outcome == NotHeld {
		h.believe = 0
	}
}

func (h *holding) release() {
	op := Op{Client: h.a.id, Kind: Release, Name: h.name, Fence: h.fence}
	h.a.invoke(&op, func(ctx context.Context, c *client.Client) (uint64, error) {
		return h.fence, c.Release(ctx, h.name, h.token, op.RequestID)
	})
}

// get reads name (with retries), records the read and returns it.
func (a *actor) get(name string) Op {
	op := Op{Client: a.id, Kind: Get, Name: name}
	a.invoke(&op, func(ctx context.Context, c *client.Client) (uint64, error) {
		l, err := c.Get(ctx, name)
		if err != nil {
			return 0, err
		}
		return l.FencingToken, nil
	})
	return op
}

// invoke runs op's attempts, all with one request id, until a definite
// answer or the budget is spent, and records op. call returns the fencing
// token to record with a success.
func (a *actor) invoke(op *Op, call func(context.Context, *client.Client) (uint64, error)) {
	rec, cfg := a.w.rec, a.w.cfg
	op.RequestID = newRequestID()
	op.Call = rec.Now()
	budget := time.Now().Add(cfg.OpBudget)
	backoff := 50 * time.Millisecond
	unknown := false
	var attempts []Attempt
	for {
		ep := a.ep
		ctx, cancel := context.WithTimeout(context.Background(), op.Wait+cfg.AttemptTimeout)
		sent := rec.Now()
		c := a.w.pool.get(ep)
		fence, err := call(ctx, c)
		cancel()
		out, v := classify(err)
		if v != definite {
			a.w.pool.reset(ep, c)
		}
		attempts = append(attempts, Attempt{Start: sent, End: rec.Now(), Endpoint: ep, Result: v.String(), OK: err == nil})
		op.Attempts++
		if err != nil {
			op.Note = err.Error()
		}
		if v == definite {
			op.Outcome, op.LastSend, op.Return = out, sent, rec.Now()
			if out == OK {
				op.Fence = fence
			}
			break
		}
		unknown = unknown || v == maybeApplied
		a.ep = (a.ep + 1) % len(a.w.pool.urls)
		if time.Now().Add(backoff).After(budget) {
			op.Outcome, op.Return = Failed, rec.Now()
			if unknown {
				op.Outcome = Unknown
			}
			break
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 500*time.Millisecond)
	}
	id := rec.AddOp(*op)
	op.ID = id
	rec.AddAttempts(id, attempts)
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "chaos-" + hex.EncodeToString(b)
}

// verdict is what one attempt's answer says about its effect.
type verdict int

const (
	definite     verdict = iota // an answer: applied, refused, or not held
	notApplied                  // certainly no effect: retry anywhere
	maybeApplied                // may or may not have taken effect
)

func (v verdict) String() string {
	return [...]string{"definite", "not_applied", "unknown"}[v]
}

// classify maps an attempt's error to an outcome and a verdict through
// the client's errors: the client (and the codes it reads) is the one
// judge of whether an answer was applied.
func classify(err error) (Outcome, verdict) {
	switch {
	case err == nil:
		return OK, definite
	case errors.Is(err, client.ErrBusy):
		return Busy, definite
	case errors.Is(err, client.ErrNotHeld):
		return NotHeld, definite
	case errors.Is(err, client.ErrNotFound):
		return NotFound, definite
	case client.NotApplied(err):
		// 503, 429, a redirect chain that never reached a leader, a
		// connection never made.
		return Failed, notApplied
	}
	// unknown_outcome (504), a broken connection, and anything unexpected
	// (500, a 400 for a reused request id, grant_ended) is treated as
	// unknown: the checker then decides whether any effect fits.
	return Unknown, maybeApplied
}
