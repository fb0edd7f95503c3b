package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Config is one chaos run.
type Config struct {
	Duration time.Duration // of the fault phase (default 60 s)
	Seed     int64
	Faults   []string // default AllFaults
	Workload WorkloadConfig
	// Bin is a prebuilt doubledutch binary; empty builds one (with the
	// ddbroken tag when Broken).
	Bin string
	// Broken runs the deliberately broken server: its leader's lease clock
	// runs BrokenRate times too fast (default 3). For proving the checker.
	Broken     bool
	BrokenRate float64
	// Dir holds data directories, logs and the visualisation. Empty: a
	// new temporary directory, which the caller may remove.
	Dir string
	// Raft timeouts of every node (default 500 ms, 500 ms, 250 ms).
	Heartbeat, Election, LeaderLease time.Duration
	// Warmup and Settle: workload without faults before and after.
	Warmup, Settle time.Duration
	// RecoveryBound: once faults stop, a leader every node agrees on and
	// a successful grant must come within it (default 20 s).
	RecoveryBound time.Duration
	// FailoverBound: a dead holder's lock must be gone within its lifetime
	// plus this, across a leader crash (default 5 s).
	FailoverBound time.Duration
	Check         CheckConfig
	Log           io.Writer // progress; default discard
	// LegacyClients is how many raw-HTTP clients of the original API run
	// beside the workload to measure what a client without retries sees
	// (default 4; negative: none).
	LegacyClients int
}

func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Duration, time.Minute)
	def(&c.Heartbeat, 500*time.Millisecond)
	def(&c.Election, 500*time.Millisecond)
	def(&c.LeaderLease, 250*time.Millisecond)
	def(&c.Warmup, 2*time.Second)
	def(&c.Settle, 4*time.Second)
	def(&c.RecoveryBound, 20*time.Second)
	def(&c.FailoverBound, 5*time.Second)
	if len(c.Faults) == 0 {
		c.Faults = AllFaults
	}
	if c.LegacyClients == 0 {
		c.LegacyClients = 4
	}
	if c.BrokenRate == 0 {
		c.BrokenRate = 3
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	c.Workload = c.Workload.withDefaults()
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "ddchaos-")
		if err != nil {
			return c, err
		}
		c.Dir = d
	} else if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return c, err
	}
	if c.Check.VisualizationDir == "" {
		c.Check.VisualizationDir = c.Dir
	}
	return c, nil
}

// Run starts a cluster, runs the workload under faults, checks the
// history and returns the report. An error means the harness itself
// failed; violations are in the report. Every child process is killed
// before Run returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Bin == "" {
		tags := ""
		if cfg.Broken {
			tags = "ddbroken"
		}
		fmt.Fprintf(cfg.Log, "building doubledutch (tags %q) into %s\n", tags, cfg.Dir)
		if cfg.Bin, err = BuildBinary(cfg.Dir, tags); err != nil {
			return nil, err
		}
	}
	ccfg := ClusterConfig{Bin: cfg.Bin, Dir: cfg.Dir, Heartbeat: cfg.Heartbeat, Election: cfg.Election, LeaderLease: cfg.LeaderLease}
	if cfg.Broken {
		ccfg.ExtraEnv = []string{fmt.Sprintf("DOUBLEDUTCH_BROKEN_RATE=%g", cfg.BrokenRate)}
	}
	c, err := StartCluster(ctx, ccfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, c: c, rec: NewRecorder(cfg.Workload.Margin),
		report: &Report{Seed: cfg.Seed, Duration: cfg.Duration, Faults: cfg.Faults, Dir: cfg.Dir, Broken: cfg.Broken}}
	func() {
		defer c.Close()
		r.execute(ctx)
	}()
	r.finish()
	return r.report, nil
}

// run is the state of one Run.
type run struct {
	cfg    Config
	c      *Cluster
	rec    *Recorder
	wl     *Workload
	probes int // probe clients handed out
	// recoveredAt is when the first grant after the faults returned.
	recoveredAt int64
	report      *Report
	legacy      *legacyClients
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%8s  %s\n", ms(r.rec.Now()), fmt.Sprintf(format, args...))
}

func (r *run) execute(ctx context.Context) {
	res := NewResource(r.rec)
	r.wl = NewWorkload(r.cfg.Workload, r.rec, res, r.c.URLs(), r.cfg.Seed)
	wctx, stopWorkload := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.wl.Run(wctx) }()
	r.legacy = &legacyClients{urls: r.c.URLs(), rec: r.rec, timeout: legacyTimeout}
	if r.cfg.LegacyClients > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.legacy.run(wctx, r.cfg.LegacyClients, r.cfg.Seed) }()
	}
	r.logf("workload started: %d clients on %v, %d raw-HTTP clients of the original API",
		r.cfg.Workload.Clients, r.cfg.Workload.Names, max(r.cfg.LegacyClients, 0))
	_ = sleepCtx(ctx, r.cfg.Warmup)

	s := &schedule{c: r.c, rec: r.rec, wl: r.wl, rng: rand.New(rand.NewSource(r.cfg.Seed)),
		fallback: rand.New(rand.NewSource(r.cfg.Seed + 1)), kinds: r.cfg.Faults,
		log: r.cfg.Log, maxLife: r.cfg.Workload.MaxLifetime, nClients: r.cfg.Workload.Clients}
	s.run(ctx, time.Now().Add(r.cfg.Duration))
	r.rec.SetFaultsEnd(r.rec.Now())
	r.logf("faults over; measuring recovery")
	r.measureRecovery(ctx)

	_ = sleepCtx(ctx, r.cfg.Settle)
	stopWorkload()
	wg.Wait()
	r.logf("workload stopped")
	r.checkLeftoverLocks(ctx)
	r.probeDeadHolder(ctx)
	r.checkConvergence(ctx)
}

// probe returns a new client outside the workload, whose operations are
// recorded and checked like the workload's.
func (r *run) probe() *actor {
	id := r.cfg.Workload.Clients + r.probes
	r.probes++
	return &actor{w: r.wl, id: id, rng: rand.New(rand.NewSource(r.cfg.Seed + int64(id))), ep: 0}
}

// violate records a violation found by the live checks.
func (r *run) violate(check, format string, args ...any) {
	v := Violation{Check: check, Message: fmt.Sprintf(format, args...)}
	r.report.LiveViolations = append(r.report.LiveViolations, v)
	r.logf("VIOLATION %s: %s", check, v.Message)
}

// finish checks the history and completes the report.
func (r *run) finish() {
	h := r.rec.History()
	r.logf("checking %d operations", len(h.Ops))
	r.report.Check = Check(h, r.cfg.Check)
	r.report.LegacyCalls = r.legacy.history()
	r.report.Legacy = measureLegacy(r.report.LegacyCalls, h.Faults)
	r.report.fill(h)
	// Linearizability first: it is the verdict that covers the others.
	all := append(append([]Violation(nil), r.report.Check.Violations...), r.report.LiveViolations...)
	sort.SliceStable(all, func(i, j int) bool {
		return all[i].Check == CheckLinearizable && all[j].Check != CheckLinearizable
	})
	r.report.Violations = all
	r.report.history = h
}

// writeHistory saves the history as text beside the logs.
func (r *Report) writeHistory() string {
	path := filepath.Join(r.Dir, "history.txt")
	f, err := os.Create(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for i := range r.history.Ops {
		fmt.Fprintln(f, r.history.Ops[i].String())
	}
	for _, w := range r.history.Writes {
		fmt.Fprintf(f, "write %s c%d %s #%d accepted=%v in_belief=%v paused=%v\n",
			ms(w.Time), w.Client, w.Name, w.Token, w.Accepted, w.InBelief, w.Paused)
	}
	return path
}
