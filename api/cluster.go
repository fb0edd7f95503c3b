package api

import (
	"context"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// Cluster is everything api needs from the replicated core. *cluster.Node
// satisfies it; tests use a fake. api declares the interface itself so that
// it never reaches into raft and so that its handlers can be tested without
// a cluster (docs/design.md, Packages and layering).
//
// Contract api relies on:
//   - Proposals (Acquire, Release, Refresh) return an fsm.Result when the
//     command was applied, and otherwise an error matching (errors.Is) one
//     of cluster.ErrNotLeader, ErrNotApplied, ErrUnknownOutcome, ErrShutdown.
//     A refusal (Busy, NotHeld) is a Result, never an error.
//   - ReadLock and ListLocks are linearizable and leader-only; StaleReadLock
//     and StaleListLocks read local applied state on any node.
//   - Subscribe delivers EventFreed after the freeing command is visible to
//     StaleReadLock, in log order, and EventLeadership both ways. Handlers
//     must not block; api never calls the Cluster while holding its own
//     locks, so a handler may take them.
type Cluster interface {
	// Acquire proposes taking a lock; the leader draws the session token.
	// Result.Outcome is fsm.Granted or fsm.Busy.
	Acquire(ctx context.Context, req cluster.AcquireRequest) (fsm.Result, error)
	// Release proposes giving a lock back: fsm.Released or fsm.NotHeld.
	Release(ctx context.Context, name string, token fsm.Token, requestID string) (fsm.Result, error)
	// Refresh proposes extending a lock: fsm.Refreshed or fsm.NotHeld.
	Refresh(ctx context.Context, name string, token fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error)
	// ReadLock is a linearizable read of one lock at the leader; now is the
	// applied lease clock (cluster ms).
	ReadLock(ctx context.Context, name string) (lock fsm.Lock, held bool, now int64, err error)
	// ListLocks is a linearizable, name-ordered page of locks whose names
	// start with prefix and sort after the exclusive cursor after.
	ListLocks(ctx context.Context, prefix, after string, limit int) (locks []fsm.Lock, now int64, err error)
	// StaleReadLock reads local state on any node. staleness is the time
	// since the last contact with the leader (0 on the leader).
	StaleReadLock(name string) (lock fsm.Lock, held bool, now int64, staleness time.Duration)
	// StaleListLocks is the local-state counterpart of ListLocks.
	StaleListLocks(prefix, after string, limit int) (locks []fsm.Lock, now int64, staleness time.Duration)
	// Lag says how far this node may be behind; its StaleReadErr decides
	// whether stale reads are answered.
	Lag() cluster.Lag
	// ClusterNow is the leader's current lease-clock reading (cluster ms).
	ClusterNow() (int64, error)
	// Leader says who leads, as far as this node knows.
	Leader() cluster.LeaderInfo
	// State is this node's view of the cluster.
	State() cluster.State
	// Subscribe registers fn for cluster events until cancel is called.
	Subscribe(fn func(cluster.Event)) (cancel func())
	// Recall answers a repeated request id from local applied state,
	// proposing nothing (cluster/locking uses it).
	Recall(kind fsm.Kind, name, requestID string) (fsm.Result, bool)
	// SetHandoff installs the waiting layer's hook into group commit.
	SetHandoff(h cluster.Handoff)
	// StateDigest hashes this node's whole state at its applied index.
	StateDigest() (applied uint64, digest string)
	// AddVoter adds a node to the Raft configuration (leader only). It
	// refuses (cluster.ErrQuorumAtRisk) a change after which no quorum of
	// voters is reachable, unless given cluster.Force.
	AddVoter(id, raftAddr string, opts ...cluster.MembershipOption) error
	// RemoveServer removes a node from the Raft configuration (leader
	// only): cluster.ErrNotMember for a non-member, ErrQuorumAtRisk as
	// AddVoter.
	RemoveServer(id string, opts ...cluster.MembershipOption) error
}
