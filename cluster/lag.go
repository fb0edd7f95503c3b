package cluster

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrTooStale means this node will not answer a stale read: it has not
// caught up with a leader since it started, or it knows it is more than
// the configured number of entries behind. Any other node may answer.
var ErrTooStale = errors.New("this node's state is too far behind to answer a stale read")

// Lag is how far this node's applied state may be behind the cluster's:
// what stale reads, /v1/health and readiness checks report.
type Lag struct {
	// LeaderID is the known leader, "" when none.
	LeaderID string
	// IsLeader is true when this node leads and is ready to serve.
	IsLeader bool
	// CommitIndex is the highest commit index this node has heard of:
	// its own on the leader, else the highest a leader sent it.
	CommitIndex uint64
	// AppliedIndex is the last entry this node has applied.
	AppliedIndex uint64
	// EntriesBehind is CommitIndex minus AppliedIndex (0 when ahead).
	EntriesBehind uint64
	// Contacted is false while no leader has been heard since start;
	// always true on the leader. Report "unknown" then, not SinceContact.
	Contacted bool
	// SinceContact is the time since a leader was last heard, 0 on the
	// leader, the largest duration when never (so that a bound on it
	// fails). A follower cut off from the leader hears no new commit
	// index: its EntriesBehind stays small while this grows.
	SinceContact time.Duration
	// CaughtUp is true once this node has applied the commit index of
	// the first leader message since it started (always on the leader).
	CaughtUp bool
	// Guarded is true while the vote guard withholds this node's vote.
	Guarded bool
	// MaxBehind is the bound past which stale reads are refused.
	MaxBehind uint64
	// ShuttingDown is true once Close or Kill began.
	ShuttingDown bool
	// DiskFree is the free space (bytes) where the data directory lives,
	// and DiskLow whether it is below the low mark (Config.DiskLowBytes).
	DiskFree uint64
	DiskLow  bool
}

// StaleReadErr says why a stale read must be refused (ErrTooStale), or
// nil when this node may answer one.
func (l Lag) StaleReadErr() error {
	switch {
	case !l.CaughtUp:
		return fmt.Errorf("%w: it has not caught up with a leader since it started", ErrTooStale)
	case l.EntriesBehind > l.MaxBehind:
		return fmt.Errorf("%w: %d entries behind the last commit index it heard of (bound %d)", ErrTooStale, l.EntriesBehind, l.MaxBehind)
	}
	return nil
}

// Lag reports this node's progress. It is cheap (one statfs, no RPC).
func (n *Node) Lag() Lag {
	l := Lag{
		LeaderID:  n.Leader().ID,
		IsLeader:  n.IsLeader(),
		Guarded:   n.guard.isGuarded(),
		MaxBehind: n.cfg.StaleReadMaxBehind,
	}
	l.AppliedIndex = max(n.fsm.AppliedIndex(), n.raft.AppliedIndex())
	l.CommitIndex = max(n.raft.CommitIndex(), n.guard.heard.Load())
	if l.CommitIndex > l.AppliedIndex {
		l.EntriesBehind = l.CommitIndex - l.AppliedIndex
	}
	switch last := n.raft.LastContact(); {
	case l.IsLeader:
		l.Contacted = true
	case last.IsZero():
		l.SinceContact = time.Duration(math.MaxInt64)
	default:
		l.Contacted, l.SinceContact = true, time.Since(last)
	}
	l.CaughtUp = n.caughtUpSinceStart(l)
	if free, _, err := diskSpace(n.cfg.DataDir); err == nil {
		l.DiskFree, l.DiskLow = free, n.diskLow(free)
	}
	select {
	case <-n.closing:
		l.ShuttingDown = true
	default:
	}
	return l
}

// caughtUpSinceStart latches once the node leads, or has applied the
// commit index the first leader message after start carried.
func (n *Node) caughtUpSinceStart(l Lag) bool {
	if n.caughtUp.Load() {
		return true
	}
	if l.IsLeader || (n.guard.anyHeard.Load() && l.AppliedIndex >= n.guard.firstHeard.Load()) {
		n.caughtUp.Store(true)
		return true
	}
	return false
}
