package cluster

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// ReadLock returns the lock held under name, linearizably: only the leader
// answers, after confirming it still leads and has applied everything
// committed when the read began.
func (n *Node) ReadLock(ctx context.Context, name string) (lock fsm.Lock, held bool, now int64, err error) {
	if err := n.linearize(ctx); err != nil {
		return fsm.Lock{}, false, 0, err
	}
	lock, held = n.fsm.Get(name)
	return lock, held, n.readNow(), nil
}

// ListLocks returns up to limit locks with the prefix whose names sort
// after the cursor, linearizably (see ReadLock).
func (n *Node) ListLocks(ctx context.Context, prefix, after string, limit int) ([]fsm.Lock, int64, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, 0, err
	}
	return n.fsm.List(prefix, after, limit), n.readNow(), nil
}

// StaleReadLock answers from this node's state without asking anyone.
// staleness is how long ago this node last heard from a leader (zero on the
// leader): the answer may be that much out of date, or more.
func (n *Node) StaleReadLock(name string) (lock fsm.Lock, held bool, now int64, staleness time.Duration) {
	lock, held = n.fsm.Get(name)
	return lock, held, n.readNow(), n.staleness()
}

// StaleListLocks is the stale form of ListLocks.
func (n *Node) StaleListLocks(prefix, after string, limit int) ([]fsm.Lock, int64, time.Duration) {
	return n.fsm.List(prefix, after, limit), n.readNow(), n.staleness()
}

// staleness is the time since a leader was last heard; Lag says whether
// one ever was (never: the largest duration).
func (n *Node) staleness() time.Duration {
	if n.leading.Load() != nil {
		return 0
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(last)
}

// readNow is the best reading of cluster time for reporting remaining
// lifetimes: the leader's clock, or else the applied clock.
func (n *Node) readNow() int64 {
	if now, err := n.clock.now(); err == nil {
		return now
	}
	return n.fsm.Now()
}

// ClusterNow is the leader's current lease-clock reading (ms).
func (n *Node) ClusterNow() (int64, error) {
	if n.leading.Load() == nil {
		return 0, ErrNotLeader
	}
	return n.clock.now()
}

// linearize implements the read-index rule: note the commit index, confirm
// leadership with a heartbeat round, then wait until that index is
// applied. The Barrier at the start of the term already made the commit
// index cover every earlier term.
func (n *Node) linearize(ctx context.Context) error {
	if n.leading.Load() == nil {
		if n.raft.State() == raft.Leader {
			return fmt.Errorf("%w: the leader is still starting", ErrNotApplied)
		}
		return ErrNotLeader
	}
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return n.waitApplied(ctx, idx)
}

// waitApplied blocks until the FSM has applied index idx.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	n.readWaiters.Add(1)
	defer n.readWaiters.Add(-1)
	for {
		n.appliedMu.Lock()
		ch := n.appliedNotify
		n.appliedMu.Unlock()
		if n.appliedIndex() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNotApplied, ctx.Err())
		case <-n.closing:
			return ErrShutdown
		}
	}
}

// Leader says who leads and where its API is, as far as this node knows.
// A follower that has not heard from its leader for a few heartbeat
// intervals knows none (see staleLeaderAfter).
func (n *Node) Leader() LeaderInfo {
	_, id := n.raft.LeaderWithID()
	if !n.leaderFresh(string(id)) {
		id = ""
	}
	info := LeaderInfo{ID: string(id)}
	if id != "" {
		info.APIURL = n.fsm.APIURL(string(id))
	}
	info.IsSelf = n.leading.Load() != nil && info.ID == n.cfg.NodeID
	return info
}

// IsLeader reports whether this node leads and is ready to serve.
func (n *Node) IsLeader() bool { return n.leading.Load() != nil }

// State reports this node's view of the cluster.
func (n *Node) State() State {
	stats := n.raft.Stats()
	num := func(k string) uint64 {
		v, _ := strconv.ParseUint(stats[k], 10, 64)
		return v
	}
	st := State{
		NodeID:       n.cfg.NodeID,
		RaftState:    n.raft.State().String(),
		Leader:       n.Leader(),
		Term:         num("term"),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.appliedIndex(),
		LastIndex:    n.raft.LastIndex(),
		LeaseNow:     n.fsm.Now(),
		LastContact:  n.staleness(),
	}
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, ServerInfo{
				ID:       string(s.ID),
				Address:  string(s.Address),
				Suffrage: s.Suffrage.String(),
				APIURL:   n.fsm.APIURL(string(s.ID)),
				Leader:   string(s.ID) == st.Leader.ID,
			})
		}
	}
	return st
}

// StateDigest is a SHA-256 of this node's whole state machine (locks,
// lease clock, dedup table, announced URLs) in snapshot form, with the
// index it was taken at. Two nodes with equal digests at equal indexes
// hold the same state. It costs O(number of locks).
func (n *Node) StateDigest() (applied uint64, digest string) {
	idx, d := n.fsm.Digest()
	return idx, hex.EncodeToString(d[:])
}
