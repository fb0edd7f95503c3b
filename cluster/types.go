package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// Proposal outcomes other than "applied" (docs/design.md, Outcomes). Callers match
// them with errors.Is; the specific cause is wrapped alongside.
var (
	// ErrNotLeader means this node is not the leader: nothing was
	// proposed. Ask Leader() where to go.
	ErrNotLeader = errors.New("this node is not the leader")
	// ErrNotApplied means the command was definitely not applied (the
	// leader was still starting, its clock stalled, leadership was being
	// transferred, the queue was full): retrying is safe.
	ErrNotApplied = errors.New("command not applied")
	// ErrUnknownOutcome means the command may or may not have been
	// applied (leadership lost or shutdown while it was in flight).
	// Retrying with the same request id is safe.
	ErrUnknownOutcome = errors.New("outcome unknown: the command may or may not have been applied")
	// ErrShutdown means the node is closing; nothing was proposed.
	ErrShutdown = errors.New("node is shutting down")
	// ErrLeadershipLost is wrapped, with ErrUnknownOutcome, into the error
	// of a proposal whose leader lost leadership while it was in flight:
	// the API then carries the request to the next leader.
	ErrLeadershipLost = raft.ErrLeadershipLost
)

// AcquireRequest asks for a lock. The leader draws the session token.
type AcquireRequest struct {
	Name      string
	Lifetime  time.Duration
	Owner     string
	RequestID string
}

// LeaderInfo says who leads, as far as this node knows.
type LeaderInfo struct {
	// ID is the leader's node id, "" when no leader is known.
	ID string
	// APIURL is the API URL the leader announced, "" when unknown.
	APIURL string
	// IsSelf is true when this node is the leader and ready to serve.
	IsSelf bool
}

// EventKind tells what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventFreed: the applied log freed the locks in Names (release or
	// expiry). Delivered on every node, in log order.
	EventFreed EventKind = iota + 1
	// EventLeadership: this node became ready to lead (IsLeader true) or
	// stopped leading (IsLeader false).
	EventLeadership
	// EventLeaderChanged: the leader this node knows, or the API URL it
	// announced, may have changed (to none, too). Subscribers re-read
	// Leader(). A follower's trust in a silent leader also lapses with
	// time (no event then), so waiters re-check now and then as well.
	EventLeaderChanged
)

// Event is delivered to subscribers. Handlers run on the node's internal
// goroutines and must not block.
type Event struct {
	Kind     EventKind
	Names    []string
	IsLeader bool
}

// ServerInfo describes one member of the Raft configuration.
type ServerInfo struct {
	ID       string
	Address  string
	Suffrage string
	APIURL   string
	Leader   bool
}

// State is a node's view of the cluster, for status endpoints.
type State struct {
	NodeID       string
	RaftState    string
	Leader       LeaderInfo
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	LeaseNow     int64
	LastContact  time.Duration
	Servers      []ServerInfo
}
