package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Voter is one voter of the bootstrap configuration: a node id and its
// Raft address. (Not an HTTP server, and not the ServerInfo a running
// node reports about its peers.)
type Voter struct {
	ID      string
	Address string // Raft address, host:port
}

// Config configures a Node. Zero durations take the defaults below.
type Config struct {
	// NodeID names this node; it must be unique in the cluster.
	NodeID string
	// RaftBind is the address the Raft transport listens on
	// ("127.0.0.1:0" picks a free port).
	RaftBind string
	// RaftListener, if set, is used instead of binding RaftBind; it lets a caller learn every port before any node starts.
	RaftListener net.Listener
	// RaftAdvertise is the Raft address peers dial, when it differs from
	// the bound one (containers, NAT).
	RaftAdvertise string
	// APIURL is this node's advertised client API URL. The node records it
	// in the log when it takes office, so followers can redirect to it.
	APIURL string
	// DataDir holds raft.db and snapshots/.
	DataDir string
	// Voters is the bootstrap configuration, the same list on every node.
	// A node with no Raft state bootstraps with it; a node with state
	// never bootstraps again. Empty: wait to be added by a leader.
	Voters []Voter

	// RaftServerTLS and RaftClientTLS, when both set, run Raft traffic
	// over mutually authenticated TLS.
	RaftServerTLS *tls.Config
	RaftClientTLS *tls.Config

	// TickInterval is the safety-net tick while locks are held (the
	// original's "precision"). Default 333 ms, at most MaxTickInterval.
	TickInterval time.Duration
	// StallThreshold: a leader whose clock goroutine was not scheduled for
	// this long stops stamping until it has verified leadership again; the
	// stalled time is not counted. Default 2 s, between MinStallThreshold
	// and MaxStallThreshold. The clock goroutine beats every quarter of it,
	// whatever TickInterval is, so a long tick never looks like a stall.
	StallThreshold time.Duration
	// Raft timeouts, LAN defaults 500/500/250 ms: measured on loopback
	// with fsync, a killed or stopped leader is replaced in about 0.6 s
	// (followers check contact as soon as a heartbeat timeout passes,
	// watchLeaderContact), and a 60 s soak at 64 workers saw no election
	// (BenchmarkSoakElections). Shorter timeouts caused spurious
	// elections under CPU load.
	HeartbeatTimeout   time.Duration // default 500 ms
	ElectionTimeout    time.Duration // default 500 ms
	LeaderLeaseTimeout time.Duration // default 250 ms
	// ApplyTimeout bounds how long a proposal may wait to enter Raft's
	// queue; past it the command is not applied. Default 5 s.
	ApplyTimeout time.Duration
	// SnapshotInterval is how often Raft checks SnapshotThreshold (at a
	// random point between it and twice it). Default 10 s: a restarted
	// node replays every entry since the last snapshot before it is
	// caught up or, elected, serves, and at 2 min (Raft's default, reset
	// by every restart) a busy cluster gathered 150,000 entries between
	// snapshots: 3.3 s of replay after a restart, and leader failovers
	// that grew from 0.55 to 1.9 s over ten minutes of load, against 0.3 s
	// and a flat 0.53-0.59 s at 10 s. A snapshot of a million locks
	// persists in about 50 ms.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64 // default 8192 entries
	TrailingLogs      uint64 // default 10240 entries
	// StaleReadMaxBehind: a node that knows it is more entries than this
	// behind the commit index refuses stale reads (ErrTooStale). Default
	// 1000.
	StaleReadMaxBehind uint64
	// DiskLowBytes: free space in the data directory's file system below
	// which the node warns in its log and reports disk_low. Default 64 MiB.
	DiskLowBytes uint64
	// DiskCheckInterval is how often free space is checked. Default 10 s.
	DiskCheckInterval time.Duration
	// NoSync turns off fsync of the Raft log. Only for benchmarks that
	// measure the cost of fsync; never the default.
	NoSync bool

	// Logger is the root logger; the node and Raft use named children.
	Logger hclog.Logger

	// failAnnounces makes the first announces of API URLs fail (tests).
	failAnnounces int32
	// interceptRPC, set only by tests, cuts an incoming Raft RPC (answered
	// with an error) when it returns true: an injected network fault.
	interceptRPC func(raft.RPC) bool
}

// DefaultSnapshotInterval is Config.SnapshotInterval's default.
const DefaultSnapshotInterval = 10 * time.Second

// Default Raft timeouts (see Config.HeartbeatTimeout).
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
)

// Bounds on the clock settings (Validate). MaxTickInterval matches the
// original command line's bound on "p"; an idle leader ticks every
// MaxClockStep/2 anyway, so longer ticks only thin out the safety net. A stall threshold below MinStallThreshold would flag ordinary scheduling
// jitter on a loaded machine as stalls, and one above MaxStallThreshold
// would let a paused leader stamp after a pause that long.
const (
	MaxTickInterval   = time.Minute
	MinStallThreshold = 200 * time.Millisecond
	MaxStallThreshold = 10 * time.Second
)

// beatInterval is how often the leader's clock goroutine wakes at the
// least: a quarter of the stall threshold, so that only a pause of several
// missed beats counts as a stall, independent of the tick setting.
func (c *Config) beatInterval() time.Duration { return c.StallThreshold / 4 }

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TickInterval, 333*time.Millisecond)
	def(&c.StallThreshold, 2*time.Second)
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	def(&c.ApplyTimeout, 5*time.Second)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	def(&c.DiskCheckInterval, 10*time.Second)
	if c.DiskLowBytes == 0 {
		c.DiskLowBytes = 64 << 20
	}
	if c.StaleReadMaxBehind == 0 {
		c.StaleReadMaxBehind = 1000
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("cluster: node id is required")
	case c.DataDir == "":
		return errors.New("cluster: data directory is required")
	case c.RaftBind == "" && c.RaftListener == nil:
		return errors.New("cluster: raft bind address is required")
	case (c.RaftServerTLS == nil) != (c.RaftClientTLS == nil):
		return errors.New("cluster: raft TLS needs both a server and a client configuration")
	}
	if c.RaftListener == nil {
		if _, _, err := net.SplitHostPort(c.RaftBind); err != nil {
			return fmt.Errorf("cluster: raft bind address %q: %w", c.RaftBind, err)
		}
	}
	seen := map[string]bool{}
	for _, s := range c.Voters {
		if s.ID == "" || s.Address == "" {
			return fmt.Errorf("cluster: voter %q: id and address are required", s.ID)
		}
		if seen[s.ID] {
			return fmt.Errorf("cluster: voter %q listed twice", s.ID)
		}
		seen[s.ID] = true
	}
	if len(c.Voters) > 0 && !seen[c.NodeID] {
		return fmt.Errorf("cluster: node %q is not in its own voter list", c.NodeID)
	}
	if c.TickInterval < 0 || c.StallThreshold < 0 || c.ApplyTimeout < 0 {
		return errors.New("cluster: durations must not be negative")
	}
	return c.validateClock()
}

// validateClock checks the clock settings against their bounds.
func (c *Config) validateClock() error {
	if c.TickInterval > MaxTickInterval {
		return fmt.Errorf("cluster: tick interval %v exceeds the maximum %v", c.TickInterval, MaxTickInterval)
	}
	if c.StallThreshold < MinStallThreshold || c.StallThreshold > MaxStallThreshold {
		return fmt.Errorf("cluster: stall threshold %v is outside [%v, %v]", c.StallThreshold, MinStallThreshold, MaxStallThreshold)
	}
	return nil
}
