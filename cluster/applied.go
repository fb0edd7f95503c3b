package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// appliedTracker is the FSM Raft drives: the lock state machine, plus the
// index of the last configuration entry that passed through the apply
// goroutine. The state machine counts only lock commands, but the read
// path waits for the commit index, which also counts membership changes:
// without this a read after AddVoter or RemoveServer waited for the next
// command, up to the idle keepalive tick (issue 8.4).
type appliedTracker struct {
	*fsm.Machine
	node *Node
	// config is the index of the last applied entry that the state
	// machine did not count: a configuration entry or a stale stamp.
	config atomic.Uint64
}

var _ raft.BatchingFSM = (*appliedTracker)(nil)

// ApplyBatch applies logs to the state machine and notes the last
// configuration entry among them. Raft hands a batching FSM both commands
// and configuration entries, in log order, on its apply goroutine.
//
// A command whose stamp was taken in another term than the entry's own
// (see stampTerm) is not handed to the state machine at all: it is
// answered errStaleStamp, on every replica alike, and counts as applied
// here like a configuration entry.
func (a *appliedTracker) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	pass := make([]*raft.Log, 0, len(logs))
	at := make([]int, 0, len(logs))
	var skipped uint64
	for i, l := range logs {
		switch {
		case l.Type == raft.LogConfiguration:
			skipped = l.Index
		case l.Type == raft.LogCommand && staleStamp(l):
			skipped, out[i] = l.Index, errStaleStamp
			continue
		}
		pass = append(pass, l)
		at = append(at, i)
	}
	if len(pass) > 0 {
		for j, r := range a.Machine.ApplyBatch(pass) {
			out[at[j]] = r
		}
	}
	if skipped > 0 {
		a.config.Store(skipped)
		a.node.notifyApplied()
	}
	return out
}

// Apply is ApplyBatch for one entry (Raft prefers ApplyBatch).
func (a *appliedTracker) Apply(l *raft.Log) interface{} {
	return a.ApplyBatch([]*raft.Log{l})[0]
}

// appliedIndex is the last index whose effect this node has applied:
// lock commands and configuration entries alike.
func (n *Node) appliedIndex() uint64 {
	idx := n.fsm.AppliedIndex()
	if n.tracker != nil {
		idx = max(idx, n.tracker.config.Load())
	}
	return idx
}

// notifyApplied wakes reads waiting for the applied index.
func (n *Node) notifyApplied() {
	if n.readWaiters.Load() == 0 {
		return
	}
	n.appliedMu.Lock()
	close(n.appliedNotify)
	n.appliedNotify = make(chan struct{})
	n.appliedMu.Unlock()
}
