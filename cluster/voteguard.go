package cluster

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// errNotCaughtUp fails this node's own vote requests while it is guarded.
var errNotCaughtUp = errors.New("cluster: not campaigning: this node forgot Raft state it may have acknowledged and has not caught up yet")

// voteGuard protects the cluster from a node that has forgotten what it
// acknowledged: one whose data directory was wiped, or lost its raft.db
// while keeping snapshots (see storagecheck.go), and came back with the
// same id.
//
// Raft's safety rests on voters remembering their logs and votes. A node
// that helped commit an entry and forgot it could, by voting, elect a
// candidate lacking that entry, and an acknowledged lock or release would
// be lost. So such a node is guarded: it refuses votes and pre-votes to
// candidates with any history (a log beyond the bootstrap entry) and does
// not campaign itself, until it is caught up with a leader:
//
//   - its current term is T, the term of a leader that has sent it
//     entries since it started (an AppendEntries of an older term is
//     ignored: Raft rejects it, and a deposed leader's late message says
//     nothing about the present);
//   - its log ends with an entry of term T, so by log matching it holds
//     that leader's log up to there, which contains everything committed
//     before T (leader completeness); and
//   - its last index has reached the highest commit index, and the
//     highest previous-entry index, that leader sent it while it was
//     guarded. The commit index covers what was committed during T,
//     also before the restart when the leader was elected before it; the
//     previous-entry index of the leader's first message after the
//     restart is its next index for this node, above every entry the
//     node acknowledged in T, which the leader may still count towards
//     a commit. One catch-up batch (256 entries) lifts nothing on its
//     own: these indexes are the leader's, not the batch's.
//
// The guard is recorded in the data directory (guardFile) and removed
// only when lifted, so a node restarted in the middle of catching up is
// guarded again. docs/design.md, The vote guard, has the argument.
type voteGuard struct {
	*raft.NetworkTransport
	node    *Node
	logs    raft.LogStore
	guarded atomic.Bool

	mu sync.Mutex
	// term is the highest leader term heard since start, and target the
	// highest commit or previous-entry index that leader sent while this
	// node was guarded.
	term, target uint64
	// heard is the highest commit index any current leader has sent
	// (for lag reports; it is kept after the guard lifts).
	heard atomic.Uint64
	// firstHeard is the commit index of the first AppendEntries accepted
	// after start: the node has caught up since start once it applied it.
	firstHeard atomic.Uint64
	anyHeard   atomic.Bool

	// intercept, when set by a test, answers an RPC with an error
	// instead of passing it on (an injected network fault).
	intercept func(raft.RPC) bool

	out    chan raft.RPC
	done   chan struct{}
	closed sync.Once

	// heartbeats is held (read) while Raft handles a heartbeat, and
	// taken by stopHeartbeats, which sets heartbeatsOff.
	heartbeats    sync.RWMutex
	heartbeatsOff bool
}

func newVoteGuard(n *Node, t *raft.NetworkTransport, logs raft.LogStore, guarded bool) *voteGuard {
	g := &voteGuard{NetworkTransport: t, node: n, logs: logs, out: make(chan raft.RPC), done: make(chan struct{})}
	g.guarded.Store(guarded)
	g.intercept = n.cfg.interceptRPC
	go g.filter(t.Consumer())
	return g
}

// Consumer is where Raft receives RPCs, after the guard has seen them.
func (g *voteGuard) Consumer() <-chan raft.RPC { return g.out }

// Close stops the filter and the transport. Raft's Shutdown closes the
// transport and so does the node's cleanup: only the first call acts.
func (g *voteGuard) Close() error {
	var err error
	g.closed.Do(func() {
		close(g.done)
		err = g.NetworkTransport.Close()
	})
	return err
}

// SetHeartbeatHandler wraps Raft's heartbeat fast path. The transport
// calls it from its connection goroutines, not through Consumer, so a
// heartbeat could race Shutdown: Raft checks for shutdown first, then
// saves the heartbeat's term, and once the node had closed raft.db in the
// meantime that save panicked the process ("failed to save current term:
// database not open"). stopHeartbeats waits out one in progress and
// refuses the later ones.
func (g *voteGuard) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		g.heartbeats.RLock()
		defer g.heartbeats.RUnlock()
		if g.heartbeatsOff {
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		cb(rpc)
	})
}

// stopHeartbeats returns once no heartbeat is being handled, and makes
// later ones refused: call it after Raft's Shutdown, before the stores
// close.
func (g *voteGuard) stopHeartbeats() {
	g.heartbeats.Lock()
	g.heartbeatsOff = true
	g.heartbeats.Unlock()
}

// RequestVote sends this node's vote request unless it must not campaign.
func (g *voteGuard) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if args.LastLogIndex > 1 && !g.caughtUp() {
		return errNotCaughtUp
	}
	return g.NetworkTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote is RequestVote's pre-vote twin.
func (g *voteGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if args.LastLogIndex > 1 && !g.caughtUp() {
		return errNotCaughtUp
	}
	return g.NetworkTransport.RequestPreVote(id, target, args, resp)
}

func (g *voteGuard) filter(in <-chan raft.RPC) {
	for {
		select {
		case rpc := <-in:
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				g.noteAppend(req)
			}
			if g.intercept != nil && g.intercept(rpc) {
				rpc.Respond(nil, errors.New("cluster: RPC cut by a test"))
				continue
			}
			if g.refuse(rpc) {
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.done:
				return
			}
		case <-g.done:
			return
		}
	}
}

// refuse answers a vote the guard withholds, and reports whether it did.
func (g *voteGuard) refuse(rpc raft.RPC) bool {
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		if req.LastLogIndex > 1 && !g.caughtUp() {
			g.node.log.Warn("withholding vote: this node forgot Raft state and has not caught up with a leader")
			rpc.Respond(&raft.RequestVoteResponse{RPCHeader: g.header(), Term: req.Term}, nil)
			return true
		}
	case *raft.RequestPreVoteRequest:
		if req.LastLogIndex > 1 && !g.caughtUp() {
			rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: g.header(), Term: req.Term}, nil)
			return true
		}
	}
	return false
}

// noteAppend records the leader's term and commit index from an
// AppendEntries that Raft will not reject for its term. Heartbeats carry
// no commit index and are skipped.
func (g *voteGuard) noteAppend(req *raft.AppendEntriesRequest) {
	if req.PrevLogEntry == 0 && len(req.Entries) == 0 && req.LeaderCommitIndex == 0 {
		return
	}
	if r := g.node.raftRef.Load(); r != nil && req.Term < r.CurrentTerm() {
		return // a deposed leader's late message: Raft rejects it
	}
	mark := max(req.LeaderCommitIndex, req.PrevLogEntry)
	g.mu.Lock()
	switch {
	case req.Term > g.term:
		g.term, g.target = req.Term, mark
	case req.Term == g.term:
		g.target = max(g.target, mark)
	}
	g.mu.Unlock()
	if !g.anyHeard.Swap(true) {
		g.firstHeard.Store(req.LeaderCommitIndex)
	}
	for cur := g.heard.Load(); req.LeaderCommitIndex > cur; cur = g.heard.Load() {
		if g.heard.CompareAndSwap(cur, req.LeaderCommitIndex) {
			break
		}
	}
	if g.guarded.Load() {
		g.caughtUp() // lift as soon as possible, not only when asked to vote
	}
}

// caughtUp reports whether the guard is lifted, lifting it for good once
// the conditions in the type's comment hold.
func (g *voteGuard) caughtUp() bool {
	if !g.guarded.Load() {
		return true
	}
	r := g.node.raftRef.Load()
	g.mu.Lock()
	term, target := g.term, g.target
	g.mu.Unlock()
	if r == nil || term == 0 || r.CurrentTerm() != term {
		return false
	}
	idx, err := g.logs.LastIndex()
	if err != nil || idx <= 1 || idx < target {
		return false
	}
	var last raft.Log
	if err := g.logs.GetLog(idx, &last); err != nil || last.Term != term {
		return false
	}
	if g.guarded.CompareAndSwap(true, false) {
		g.node.log.Info("caught up with a leader after forgetting Raft state; voting again", "index", idx, "term", term, "leader_commit", target)
		g.node.clearGuardFile()
	}
	return true
}

// lift ends the guard when this node wins an election: a guarded node can
// only have won with every voter's log at the bootstrap entry (a brand-new
// cluster), and a leader never receives the entries that would lift it.
func (g *voteGuard) lift() {
	if g.guarded.CompareAndSwap(true, false) {
		g.node.clearGuardFile()
	}
}

// isGuarded reports whether the node still withholds its vote.
func (g *voteGuard) isGuarded() bool { return g.guarded.Load() }

func (g *voteGuard) header() raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte(g.node.cfg.NodeID),
		Addr:            []byte(g.LocalAddr()),
	}
}
