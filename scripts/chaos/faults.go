package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strings"
	"time"
)

// Fault kinds, as named on the command line.
const (
	FaultKill        = "kill"         // kill -9 the leader (or a random node), restart from its data
	FaultStop        = "stop"         // SIGSTOP the leader past a lock lifetime, then SIGCONT
	FaultPartition   = "partition"    // isolate the leader, or split off a follower (minority)
	FaultBridge      = "bridge"       // cut A-C, keep A-B and B-C (B bridges)
	FaultRestart     = "restart"      // rolling restart of every node (SIGTERM, start, healthy)
	FaultChurn       = "churn"        // SIGTERM the leader (it hands over), restart; repeated
	FaultClientPause = "client-pause" // a holder stops past its lifetime, then writes stale
	FaultWipe        = "wipe"         // wipe a follower's data while the other lags; maybe kill the leader
	FaultDiskLoss    = "disk-loss"    // a stopped node loses raft.db or its snapshots
)

// AllFaults lists every fault kind.
var AllFaults = []string{FaultKill, FaultStop, FaultPartition, FaultBridge, FaultRestart, FaultChurn, FaultClientPause,
	FaultWipe, FaultDiskLoss}

// ParseFaults reads a comma-separated list of fault kinds ("all" or ""
// for every kind).
func ParseFaults(s string) ([]string, error) {
	if s == "" || s == "all" {
		return AllFaults, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !contains(AllFaults, f) {
			return nil, fmt.Errorf("unknown fault %q (want some of %s)", f, strings.Join(AllFaults, ","))
		}
		out = append(out, f)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// schedule injects faults on a seeded random schedule.
type schedule struct {
	c        *Cluster
	rec      *Recorder
	wl       *Workload
	rng      *rand.Rand
	kinds    []string
	log      io.Writer
	maxLife  time.Duration
	nClients int
	// fallback draws what depends on the cluster's timing, so that the
	// schedule's own draws (rng) stay the same for a seed.
	fallback                *rand.Rand
	kills, isolation, wipes int
	// failover is the last kill or stop's failover probe result.
	failover time.Duration
}

// run injects faults until deadline: first every enabled kind once in a
// shuffled order, then random kinds, then a final one that is healed with
// everything else. It leaves every node running and every link healed.
func (s *schedule) run(ctx context.Context, deadline time.Time) {
	order := append([]string(nil), s.kinds...)
	sort.Strings(order)
	s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		kind := s.kinds[s.rng.Intn(len(s.kinds))]
		if i < len(order) {
			kind = order[i]
		}
		s.inject(ctx, kind)
		_ = sleepCtx(ctx, time.Duration(1000+s.rng.Intn(1500))*time.Millisecond)
	}
	s.finalFault(ctx)
}

// finalFault leaves one fault standing when the phase ends, and then
// heals everything: recovery is measured from healing a live fault, not
// from a cluster that already healed itself.
func (s *schedule) finalFault(ctx context.Context) {
	var kinds []string
	for _, k := range []string{FaultKill, FaultStop, FaultPartition} {
		if contains(s.kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		s.healEverything()
		return
	}
	kind := kinds[s.rng.Intn(len(kinds))]
	ev := FaultEvent{Kind: kind, Start: s.rec.Now()}
	leader, found := s.leaderOr(ctx)
	n := s.c.nodes[leader]
	var err error
	switch kind {
	case FaultKill:
		err = n.kill()
	case FaultStop:
		err = n.stop()
	case FaultPartition:
		s.c.net.Isolate(leader, s.cutMode())
	}
	d := s.hold(ctx, 1000, 2000)
	s.healEverything()
	ev.End, ev.Leader = s.rec.Now(), found
	ev.Detail = fmt.Sprintf("final fault, healed with everything else: %s on leader %s for %v (%s)", kind, n.id, d, errText(err))
	s.rec.AddFault(ev)
	fmt.Fprintf(s.log, "fault %-12s [%s .. %s] %s\n", kind, ms(ev.Start), ms(ev.End), ev.Detail)
}

func (s *schedule) inject(ctx context.Context, kind string) {
	ev := FaultEvent{Kind: kind, Start: s.rec.Now()}
	s.failover = -1
	var detail string
	switch kind {
	case FaultKill:
		detail, ev.Leader = s.kill(ctx)
	case FaultStop:
		detail, ev.Leader = s.stop(ctx)
	case FaultPartition:
		detail, ev.Leader = s.partition(ctx)
	case FaultBridge:
		detail, ev.Leader = s.bridge(ctx)
	case FaultRestart:
		detail, ev.Leader = s.rollingRestart(ctx)
	case FaultChurn:
		detail, ev.Leader = s.churn(ctx)
	case FaultWipe:
		detail, ev.Leader = s.wipe(ctx)
	case FaultDiskLoss:
		detail, ev.Leader = s.diskLoss(ctx)
	case FaultClientPause:
		c := s.rng.Intn(s.nClients)
		s.wl.RequestPause(c)
		detail = fmt.Sprintf("client c%d pauses past its lifetime after its next grant", c)
	}
	ev.Detail, ev.End, ev.Failover = detail, s.rec.Now(), s.failover
	s.rec.AddFault(ev)
	fmt.Fprintf(s.log, "fault %-12s [%s .. %s] %s\n", kind, ms(ev.Start), ms(ev.End), detail)
}

// leaderOr returns the leader, or a random serving node when none is
// found quickly (the cluster may still be recovering from the last fault).
func (s *schedule) leaderOr(ctx context.Context) (int, bool) {
	if l, err := s.c.Leader(ctx, 3*time.Second); err == nil {
		return l, true
	}
	return s.fallback.Intn(len(s.c.nodes)), false
}

func (s *schedule) hold(ctx context.Context, minMs, maxMs int) time.Duration {
	d := time.Duration(minMs+s.rng.Intn(maxMs-minMs+1)) * time.Millisecond
	_ = sleepCtx(ctx, d)
	return d
}

func (s *schedule) kill(ctx context.Context) (string, bool) {
	leader, found := s.leaderOr(ctx)
	victim := leader
	// The first kill always hits the leader; later ones sometimes any node.
	if s.kills++; s.kills > 1 && s.rng.Float64() < 0.3 {
		victim = s.rng.Intn(len(s.c.nodes))
	}
	isLeader := found && victim == leader
	n := s.c.nodes[victim]
	start := time.Now()
	if err := n.kill(); err != nil {
		return "kill: " + err.Error(), false
	}
	probe := s.failoverProbe(ctx, victim, start)
	down := s.hold(ctx, 500, 2500)
	err := n.start()
	s.failover = probe(5 * time.Second) // the restarted node may take part
	return fmt.Sprintf("kill -9 %s (leader=%v), down %v, restart: %v", n.id, isLeader, down, errText(err)), isLeader
}

func (s *schedule) stop(ctx context.Context) (string, bool) {
	victim, isLeader := s.leaderOr(ctx)
	n := s.c.nodes[victim]
	start := time.Now()
	if err := n.stop(); err != nil {
		return "stop: " + err.Error(), false
	}
	probe := s.failoverProbe(ctx, victim, start)
	minMs := int((s.maxLife + time.Second) / time.Millisecond)
	d := s.hold(ctx, minMs, minMs+1000)
	s.failover = probe(0) // once it resumes, the old leader could grant
	err := n.cont()
	return fmt.Sprintf("SIGSTOP %s (leader=%v) for %v, SIGCONT: %v", n.id, isLeader, d, errText(err)), isLeader
}

func (s *schedule) cutMode() CutMode {
	if s.rng.Float64() < 0.5 {
		return Blackhole
	}
	return Refuse
}

func (s *schedule) partition(ctx context.Context) (string, bool) {
	leader, found := s.leaderOr(ctx)
	victim, what := leader, "leader isolated"
	// The first partition always isolates the leader.
	if s.isolation++; s.rng.Float64() < 0.4 && s.isolation > 1 {
		victim = (leader + 1 + s.rng.Intn(len(s.c.nodes)-1)) % len(s.c.nodes)
		what = "follower isolated (majority/minority split)"
	}
	mode := s.cutMode()
	s.c.net.Isolate(victim, mode)
	d := s.hold(ctx, 2000, 5000)
	s.c.net.HealAll()
	return fmt.Sprintf("%s: node%d alone, %s, for %v", what, victim+1, mode, d), found && victim == leader
}

// bridge cuts the leader from one follower; the other follower still
// reaches both and becomes the bridge.
func (s *schedule) bridge(ctx context.Context) (string, bool) {
	a, found := s.leaderOr(ctx)
	c := (a + 1 + s.rng.Intn(len(s.c.nodes)-1)) % len(s.c.nodes)
	b := 3 - a - c // the third of three nodes
	mode := s.cutMode()
	s.c.net.CutPair(a, c, mode)
	d := s.hold(ctx, 3000, 5000)
	s.c.net.HealAll()
	return fmt.Sprintf("node%d-node%d cut (%s), node%d bridges, for %v", a+1, c+1, mode, b+1, d), found
}

func (s *schedule) rollingRestart(ctx context.Context) (string, bool) {
	leader := s.c.currentLeader(ctx)
	var parts []string
	for _, i := range s.rng.Perm(len(s.c.nodes)) {
		n := s.c.nodes[i]
		err := n.terminate(10 * time.Second)
		if serr := n.start(); err == nil {
			err = serr
		}
		_, herr := s.c.WaitHealthy(ctx, 15*time.Second)
		parts = append(parts, fmt.Sprintf("%s: %s/%s", n.id, errText(err), errText(herr)))
		s.hold(ctx, 300, 800) // let the clients meet each new configuration
	}
	return "rolling restart " + strings.Join(parts, ", "), leader >= 0
}

func (s *schedule) churn(ctx context.Context) (string, bool) {
	rounds := 2 + s.rng.Intn(2)
	var parts []string
	hit := false
	for r := 0; r < rounds && ctx.Err() == nil; r++ {
		l, err := s.c.Leader(ctx, 5*time.Second)
		if err != nil {
			parts = append(parts, "no leader")
			continue
		}
		hit = true
		n := s.c.nodes[l]
		err = n.terminate(10 * time.Second)
		if serr := n.start(); err == nil {
			err = serr
		}
		_, herr := s.c.WaitHealthy(ctx, 15*time.Second)
		parts = append(parts, fmt.Sprintf("SIGTERM leader %s: %s/%s", n.id, errText(err), errText(herr)))
		s.hold(ctx, 500, 1500) // let the clients meet each new leader
	}
	return strings.Join(parts, ", "), hit
}

// healEverything ends every fault: links healed, paused nodes continued,
// dead nodes restarted.
func (s *schedule) healEverything() {
	s.c.net.HealAll()
	for _, n := range s.c.nodes {
		if n.running() {
			_ = n.cont()
		} else if err := n.start(); err != nil {
			fmt.Fprintf(s.log, "restarting %s: %v\n", n.id, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
