package api

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/doubledutch/doubledutch/fsm"
)

// Metrics counted from the applied log. Every node applies every command,
// so every node counts the same numbers (from when it started: counters
// restart at zero with the process, as Prometheus expects). Durations are
// on the cluster's lease clock, the clock that decides expiry, in seconds.

// maxFreedTracked bounds how many recently freed names are remembered for
// the handoff histogram; the oldest is forgotten first.
const maxFreedTracked = 10_000

// appliedStats observes applied results.
type appliedStats struct {
	outcomes    *prometheus.CounterVec
	dedup       prometheus.Counter
	expirations prometheus.Counter
	hold        prometheus.Histogram
	handoff     prometheus.Histogram

	mu sync.Mutex
	// held maps a held lock's name to its grant time (cluster ms), for
	// the hold time. Locks granted before this process started are not
	// in it and go unmeasured.
	held map[string]int64
	// freed maps a recently freed name to when it was freed, for the
	// release-to-next-grant handoff; order lists frees oldest first, each
	// current while freed holds the same seq for its name.
	freed map[string]freeMark
	order []orderEntry
	seq   uint64
}

type freeMark struct {
	at  int64 // cluster ms
	seq uint64
}

type orderEntry struct {
	name string
	seq  uint64
}

var clusterTimeBuckets = prometheus.ExponentialBuckets(0.001, 3, 15)

func newAppliedStats(reg prometheus.Registerer) *appliedStats {
	a := &appliedStats{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doubledutch_lock_commands_applied_total",
			Help: "Lock commands applied to this node's state machine, by outcome (granted, busy, released, refreshed, not_held, ...); repeats answered from the request-id table are counted as dedup hits instead.",
		}, []string{"outcome"}),
		dedup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "doubledutch_dedup_hits_total",
			Help: "Applied commands answered from the request-id table instead of acting again.",
		}),
		expirations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "doubledutch_lock_expirations_total",
			Help: "Locks freed because their lifetime ran out.",
		}),
		hold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "doubledutch_lock_hold_seconds",
			Help:    "Time from grant to release or expiry, on the lease clock.",
			Buckets: clusterTimeBuckets,
		}),
		handoff: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "doubledutch_lock_handoff_seconds",
			Help:    "Time from a lock being freed to its next grant, on the lease clock.",
			Buckets: clusterTimeBuckets,
		}),
		held:  map[string]int64{},
		freed: map[string]freeMark{},
	}
	reg.MustRegister(a.outcomes, a.dedup, a.expirations, a.hold, a.handoff)
	return a
}

// observe runs on Raft's apply goroutine for every command: map updates
// and counter increments only, never a wait.
func (a *appliedStats) observe(r fsm.Result) {
	switch {
	case r.Duplicate:
		a.dedup.Inc() // answered, not acted: not an outcome
	case r.Outcome != fsm.Ticked && r.Outcome != fsm.Announced:
		a.outcomes.WithLabelValues(r.Outcome.String()).Inc()
	}
	expired := len(r.Freed)
	if r.Outcome == fsm.Released && !r.Duplicate {
		expired-- // the release's own lock is last in Freed
	}
	if expired > 0 {
		a.expirations.Add(float64(expired))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range r.Freed {
		if at, ok := a.held[name]; ok {
			a.hold.Observe(seconds(r.Now - at))
			delete(a.held, name)
		}
		a.noteFreed(name, r.Now)
	}
	if r.Outcome == fsm.Granted && !r.Duplicate {
		name := r.Lock.Name
		if _, again := a.held[name]; !again {
			a.held[name] = r.Lock.GrantedAt
			if m, ok := a.freed[name]; ok {
				a.handoff.Observe(seconds(r.Lock.GrantedAt - m.at))
				delete(a.freed, name)
			}
		}
	}
}

// noteFreed remembers when name was freed. Entries of order whose name
// was granted or freed again since are stale: they are skipped when the
// oldest is evicted and dropped when stale ones outnumber live ones, so
// each call costs O(1) amortized.
func (a *appliedStats) noteFreed(name string, at int64) {
	a.seq++
	a.freed[name] = freeMark{at: at, seq: a.seq}
	a.order = append(a.order, orderEntry{name: name, seq: a.seq})
	for len(a.freed) > maxFreedTracked {
		e := a.order[0]
		a.order = a.order[1:]
		if m, ok := a.freed[e.name]; ok && m.seq == e.seq {
			delete(a.freed, e.name)
		}
	}
	if len(a.order) > 2*len(a.freed)+64 {
		kept := make([]orderEntry, 0, 2*len(a.freed)+64)
		for _, e := range a.order {
			if m, ok := a.freed[e.name]; ok && m.seq == e.seq {
				kept = append(kept, e)
			}
		}
		a.order = kept
	}
}

func seconds(ms int64) float64 {
	if ms < 0 {
		return 0
	}
	return float64(ms) / 1000
}

// raftCollector reads Raft's state at scrape time.
type raftCollector struct {
	s   *Server
	ops Ops
}

var (
	descState    = prometheus.NewDesc("doubledutch_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	descTerm     = prometheus.NewDesc("doubledutch_raft_term", "Current Raft term.", nil, nil)
	descCommit   = prometheus.NewDesc("doubledutch_raft_commit_index", "Raft commit index this node knows.", nil, nil)
	descApplied  = prometheus.NewDesc("doubledutch_raft_applied_index", "Index of the last command applied to this node's state machine.", nil, nil)
	descLast     = prometheus.NewDesc("doubledutch_raft_last_index", "Last index in this node's log.", nil, nil)
	descLeader   = prometheus.NewDesc("doubledutch_raft_is_leader", "1 while this node leads and serves.", nil, nil)
	descChanges  = prometheus.NewDesc("doubledutch_raft_leader_changes_total", "Leader changes this node observed since it started.", nil, nil)
	descBehind   = prometheus.NewDesc("doubledutch_raft_peer_entries_behind", "On the leader: entries each member is behind the leader's log.", []string{"peer"}, nil)
	descContact  = prometheus.NewDesc("doubledutch_raft_peer_last_contact_seconds", "On the leader: time since each member last answered.", []string{"peer"}, nil)
	descLeaseNow = prometheus.NewDesc("doubledutch_lease_clock_seconds", "The applied lease clock (cluster time).", nil, nil)
	raftStates   = []string{"Follower", "Candidate", "Leader", "Shutdown"}
)

// Describe sends the descriptors.
func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descTerm, descCommit, descApplied, descLast, descLeader, descChanges, descBehind, descContact, descLeaseNow} {
		ch <- d
	}
}

// Collect reads the node's state once per scrape.
func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.cluster.State()
	for _, name := range raftStates {
		v := 0.0
		if st.RaftState == name {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, name)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descTerm, float64(st.Term))
	gauge(descCommit, float64(st.CommitIndex))
	gauge(descApplied, float64(st.AppliedIndex))
	gauge(descLast, float64(st.LastIndex))
	gauge(descLeaseNow, float64(st.LeaseNow)/1000)
	leader := 0.0
	if st.Leader.IsSelf {
		leader = 1
	}
	gauge(descLeader, leader)
	if c.ops == nil {
		return
	}
	_, total := c.ops.LeaderChanges()
	ch <- prometheus.MustNewConstMetric(descChanges, prometheus.CounterValue, float64(total))
	if !st.Leader.IsSelf {
		return
	}
	for _, p := range c.ops.Peers() {
		if p.Known {
			ch <- prometheus.MustNewConstMetric(descBehind, prometheus.GaugeValue, float64(p.EntriesBehind), p.ID)
			ch <- prometheus.MustNewConstMetric(descContact, prometheus.GaugeValue, p.LastContact, p.ID)
		}
	}
}
