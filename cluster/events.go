package cluster

import "github.com/doubledutch/doubledutch/fsm"

// Subscribe registers fn for the node's events and returns a function that
// removes it. fn runs on the node's internal goroutines (Raft's apply
// goroutine for EventFreed) and must not block.
func (n *Node) Subscribe(fn func(Event)) (cancel func()) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	n.subSeq++
	id := n.subSeq
	n.subs[id] = fn
	return func() {
		n.subsMu.Lock()
		delete(n.subs, id)
		n.subsMu.Unlock()
	}
}

func (n *Node) emit(ev Event) {
	n.subsMu.Lock()
	fns := make([]func(Event), 0, len(n.subs))
	for _, fn := range n.subs {
		fns = append(fns, fn)
	}
	n.subsMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// onApply runs after every applied command, on Raft's apply goroutine.
func (n *Node) onApply(r fsm.Result) {
	if n.guard != nil {
		n.guard.caughtUp() // lift the guard while the term is still the leader's
	}
	n.notifyApplied()
	if r.Outcome == fsm.Announced {
		n.emit(Event{Kind: EventLeaderChanged})
	}
	n.ops.applied(r)
	if len(r.Freed) > 0 {
		n.emit(Event{Kind: EventFreed, Names: r.Freed})
	}
	if (r.Outcome == fsm.Granted || r.Outcome == fsm.Refreshed) && !r.Duplicate {
		n.noteDeadline(r.Lock.Deadline)
	}
}
