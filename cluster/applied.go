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
	// config is the index of the last applied configuration entry.
	config atomic.Uint64
}

var _ raft.BatchingFSM = (*appliedTracker)(nil)

// ApplyBatch applies logs to the state machine and notes the last
// configuration entry among them. Raft hands a batching FSM both commands
// and configuration entries, in log order, on its apply goroutine.
func (a *appliedTracker) ApplyBatch(logs []*raft.Log) []interface{} {
	out := a.Machine.ApplyBatch(logs)
	var cfg uint64
	for _, l := range logs {
		if l.Type == raft.LogConfiguration {
			cfg = l.Index
		}
	}
	if cfg > 0 {
		a.config.Store(cfg)
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
