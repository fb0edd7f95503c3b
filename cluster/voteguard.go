package cluster

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// errNotCaughtUp fails this node's own vote requests while it is guarded.
var errNotCaughtUp = errors.New("cluster: not campaigning: started with an empty data directory and not caught up yet")

// voteGuard protects the cluster from a node that has forgotten what it
// acknowledged: one whose data directory was wiped and that came back
// with the same id.
//
// Raft's safety rests on voters remembering their logs. A wiped node that
// had helped commit an entry could, by voting, elect a candidate lacking
// that entry, and an acknowledged lock or release would be lost. So a node
// that starts with no Raft state is guarded until its log holds an entry
// of the term of a leader that has replicated to it since. Such an entry was sent by a leader
// elected after the restart, and by Raft's log matching the log then also
// holds everything committed before that term. While guarded, the node
//   - refuses votes and pre-votes to candidates with any history (a log
//     beyond the bootstrap entry), and
//   - does not campaign itself once it holds history it cannot vouch for.
//
// A brand-new cluster is unaffected: its first election happens with every
// log at the bootstrap entry, and each node is caught up as soon as the
// first leader's first entry reaches it. The price is availability, never
// safety: a wiped node and a lagging node left alone wait for a node with
// the full log to come back.
type voteGuard struct {
	*raft.NetworkTransport
	node    *Node
	logs    raft.LogStore
	guarded atomic.Bool
	// leaderTerm is the highest term of a leader that has sent this node
	// entries since it started.
	leaderTerm atomic.Uint64
	out        chan raft.RPC
	done       chan struct{}
	closed     sync.Once
}

func newVoteGuard(n *Node, t *raft.NetworkTransport, logs raft.LogStore, startedEmpty bool) *voteGuard {
	g := &voteGuard{NetworkTransport: t, node: n, logs: logs, out: make(chan raft.RPC), done: make(chan struct{})}
	g.guarded.Store(startedEmpty)
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
				g.noteLeader(req.Term)
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
			g.node.log.Warn("withholding vote: this node started with an empty data directory and has not caught up")
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

func (g *voteGuard) noteLeader(term uint64) {
	for {
		cur := g.leaderTerm.Load()
		if term <= cur || g.leaderTerm.CompareAndSwap(cur, term) {
			return
		}
	}
}

// caughtUp reports whether the guard is lifted, lifting it for good once
// the log's last entry is of the term of a leader that has replicated to
// this node since it started: only that leader can have sent it. (Not the
// node's current term: a transfer or an election bumps that first.)
func (g *voteGuard) caughtUp() bool {
	if !g.guarded.Load() {
		return true
	}
	term := g.leaderTerm.Load()
	idx, err := g.logs.LastIndex()
	if err != nil || idx <= 1 || term == 0 {
		return false
	}
	var last raft.Log
	if err := g.logs.GetLog(idx, &last); err != nil || last.Term != term {
		return false
	}
	if g.guarded.CompareAndSwap(true, false) {
		g.node.log.Info("caught up after starting with an empty data directory; voting again", "index", idx, "term", last.Term)
	}
	return true
}

// lift ends the guard when this node wins an election: a guarded node can
// only have won with every voter's log at the bootstrap entry (a brand-new
// cluster), and a leader never receives the entries that would lift it.
func (g *voteGuard) lift() { g.guarded.Store(false) }

func (g *voteGuard) header() raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte(g.node.cfg.NodeID),
		Addr:            []byte(g.LocalAddr()),
	}
}
