package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// Operator-facing views of the node: followers' progress as the leader
// sees it, leadership transfer on request, recent leader changes, and a
// hook that observes every applied command (for metrics).

// maxLeaderChanges is how many leader changes LeaderChanges remembers.
const maxLeaderChanges = 20

// PeerProgress is one member of the configuration with how far behind it
// is, as this node knows it. Only the leader knows its followers'
// progress: elsewhere Known is false for every node but this one.
type PeerProgress struct {
	ID       string
	Address  string
	Suffrage string
	APIURL   string
	// Role is "leader", "follower", or "unknown" (not heard of lately).
	Role string
	// Known says whether the fields below are measured.
	Known bool
	// LastContact is the time since this node last heard from the peer
	// (seconds; 0 for this node itself).
	LastContact float64
	// LastLogIndex is the peer's last log index it reported.
	LastLogIndex uint64
	// EntriesBehind is this leader's last log index minus the peer's.
	EntriesBehind uint64
}

// LeaderChange is one change of leader this node observed.
type LeaderChange struct {
	At       time.Time
	LeaderID string // "" when the leader was lost
	Term     uint64
}

// seenPeer is what the leader last heard from a follower.
type seenPeer struct {
	at      time.Time
	lastLog uint64
}

// opsState is the node's operations bookkeeping. Its zero value is ready.
type opsState struct {
	mu      sync.Mutex
	peers   map[raft.ServerID]seenPeer
	changes []LeaderChange

	leaderChanges atomic.Uint64
	onApplied     atomic.Pointer[func(fsm.Result)]
}

// peerTracker wraps the transport to note, from the answers to the
// leader's AppendEntries (heartbeats included, which carry the follower's
// last log index), how far behind each follower is. Raft exposes no
// replication state of its own.
type peerTracker struct {
	*voteGuard
	ops *opsState
}

func (o *opsState) wrap(g *voteGuard) raft.Transport { return &peerTracker{voteGuard: g, ops: o} }

// AppendEntries sends as the guard does and records the answer.
func (p *peerTracker) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := p.voteGuard.AppendEntries(id, target, args, resp)
	if err == nil {
		p.ops.mu.Lock()
		if p.ops.peers == nil {
			p.ops.peers = map[raft.ServerID]seenPeer{}
		}
		p.ops.peers[id] = seenPeer{at: time.Now(), lastLog: resp.LastLog}
		p.ops.mu.Unlock()
	}
	return err
}

// applied runs on Raft's apply goroutine for every command.
func (o *opsState) applied(r fsm.Result) {
	if fn := o.onApplied.Load(); fn != nil {
		(*fn)(r)
	}
}

// OnApplied installs fn to be called after every applied command, on
// Raft's apply goroutine (it must not block), replacing any earlier one.
// nil removes it. Metrics count lock operations with it.
func (n *Node) OnApplied(fn func(fsm.Result)) {
	if fn == nil {
		n.ops.onApplied.Store(nil)
		return
	}
	n.ops.onApplied.Store(&fn)
}

// LockCount is the number of locks held in this node's applied state.
func (n *Node) LockCount() int { return n.fsm.Len() }

// noteObservation logs leader and membership changes at info level and
// keeps the recent leader changes (watchLeaderChanges feeds it).
func (n *Node) noteObservation(o raft.Observation) {
	switch d := o.Data.(type) {
	case raft.LeaderObservation:
		c := LeaderChange{At: time.Now(), LeaderID: string(d.LeaderID), Term: n.raft.CurrentTerm()}
		n.ops.leaderChanges.Add(1)
		n.ops.mu.Lock()
		n.ops.changes = append(n.ops.changes, c)
		if len(n.ops.changes) > maxLeaderChanges {
			n.ops.changes = n.ops.changes[1:]
		}
		n.ops.mu.Unlock()
		if c.LeaderID == "" {
			n.log.Info("leader lost", "term", c.Term)
		} else {
			n.log.Info("leader changed", "leader", c.LeaderID, "term", c.Term)
		}
	case raft.PeerObservation:
		if d.Removed {
			n.log.Info("membership: node removed", "node", d.Peer.ID)
		} else {
			n.log.Info("membership: node added or updated", "node", d.Peer.ID, "address", d.Peer.Address, "suffrage", d.Peer.Suffrage.String())
		}
	}
}

// LeaderChanges returns the most recent leader changes this node saw,
// oldest first, and how many it saw since it started.
func (n *Node) LeaderChanges() (recent []LeaderChange, total uint64) {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	return append([]LeaderChange(nil), n.ops.changes...), n.ops.leaderChanges.Load()
}

// Peers lists the configuration with each member's progress. On the
// leader every follower's progress is measured from its last answer; on a
// follower only the node itself is.
func (n *Node) Peers() []PeerProgress {
	st := n.State()
	leading := n.IsLeader()
	last := n.raft.LastIndex()
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	out := make([]PeerProgress, 0, len(st.Servers))
	for _, s := range st.Servers {
		p := PeerProgress{ID: s.ID, Address: s.Address, Suffrage: s.Suffrage, APIURL: s.APIURL, Role: "follower"}
		if s.Leader {
			p.Role = "leader"
		}
		switch {
		case s.ID == n.cfg.NodeID:
			p.Known, p.LastLogIndex = true, last
			if !leading {
				p.LastContact = 0
				if c, a := st.CommitIndex, st.AppliedIndex; c > a {
					p.EntriesBehind = c - a
				}
			}
		case leading:
			if seen, ok := n.ops.peers[raft.ServerID(s.ID)]; ok {
				p.Known, p.LastLogIndex = true, seen.lastLog
				p.LastContact = time.Since(seen.at).Seconds()
				if last > seen.lastLog {
					p.EntriesBehind = last - seen.lastLog
				}
			} else {
				p.Role = "unknown"
			}
		}
		out = append(out, p)
	}
	return out
}

// TransferLeadership hands leadership to target, or to the most
// up-to-date follower when target is "". Only the leader can. It returns
// nil once this node has stopped leading (IsLeader is false) and another
// node, target when named, is known to lead; an error when that is not so
// within two election timeouts of Raft's answer (ErrNotApplied: retry).
// A target that is not a member is ErrNotMember.
func (n *Node) TransferLeadership(target string) error {
	term := n.leading.Load()
	if term == nil {
		return ErrNotLeader
	}
	f, err := n.transferTo(target)
	if err != nil || f == nil {
		return err
	}
	if err := n.awaitNewLeader(term, target, n.transfers.run(f)); err != nil {
		n.log.Warn("leadership transfer failed", "target", target, "error", err)
		return err
	}
	n.log.Info("leadership transferred on request", "target", target, "leader", n.Leader().ID)
	return nil
}

// transferTo is the Raft call that moves leadership to target, or nil
// when target is this node (already leading: nothing to move).
func (n *Node) transferTo(target string) (func() raft.Future, error) {
	if target == "" {
		return n.raft.LeadershipTransfer, nil
	}
	addr, ok := n.serverAddress(target)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotMember, target)
	}
	if target == n.cfg.NodeID {
		return nil, nil
	}
	return func() raft.Future { return n.raft.LeadershipTransferToServer(raft.ServerID(target), addr) }, nil
}

// awaitNewLeader decides a transfer by who leads, not by Raft's answer
// (raftErr). Raft answers success when this node leaves its leader loop:
// before a new leader is elected (it may not be the target) and before
// this node has stopped its term, so IsLeader could still be true here.
// And it answers "leadership transfer timeout" one election timeout after
// the request even when its TimeoutNow went out and the target wins a
// moment later. So wait, up to two election timeouts, for this node's
// term to have stopped and the wanted leader to be known.
func (n *Node) awaitNewLeader(term *leaderTerm, target string, raftErr error) error {
	giveUp := time.NewTimer(2 * n.cfg.ElectionTimeout)
	defer giveUp.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		id, stopped := n.Leader().ID, isClosed(term.stopped)
		if stopped && id != "" && id != n.cfg.NodeID && (target == "" || id == target) {
			return nil
		}
		select {
		case <-n.closing:
			return ErrShutdown
		case <-poll.C:
			continue
		case <-giveUp.C:
		}
		switch {
		case raftErr != nil:
			return fmt.Errorf("%w: leadership transfer: %w", ErrNotApplied, raftErr)
		case !stopped:
			return fmt.Errorf("%w: leadership transfer: this node still leads", ErrNotApplied)
		case id == n.cfg.NodeID:
			return fmt.Errorf("%w: leadership transfer: this node was elected again", ErrNotApplied)
		case id == "":
			return fmt.Errorf("%w: leadership transfer: no new leader known yet", ErrNotApplied)
		}
		return fmt.Errorf("%w: leadership transfer: %s leads, not %s", ErrNotApplied, id, target)
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (n *Node) serverAddress(id string) (raft.ServerAddress, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, true
		}
	}
	return "", false
}
