package cluster

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// transferGate tracks the leadership transfers this node has started
// (on request, or before a graceful shutdown). While one is in flight
// Raft refuses every new entry with ErrLeadershipTransferInProgress, for
// up to an election timeout. Those commands were certainly not applied,
// but answering them "not applied" made clients see 503s for a planned
// handover, and a waiter whose grant rode an entry refused so lost its
// turn (its /getlock answered 503 instead of being carried to the next
// leader). Instead the proposer holds such an entry until the transfer ends
// and proposes it again: if this node still leads (the transfer failed),
// it commits here; if it no longer does, Raft answers ErrNotLeader, which
// the API carries to the new leader (nothing was applied).
type transferGate struct {
	mu     sync.Mutex
	active int
	idle   chan struct{} // closed when the last active transfer ends
}

// run runs the transfer f under the gate.
func (g *transferGate) run(f func() raft.Future) error {
	g.mu.Lock()
	if g.active == 0 {
		g.idle = make(chan struct{})
	}
	g.active++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.active--
		if g.active == 0 {
			close(g.idle)
		}
		g.mu.Unlock()
	}()
	return f().Error()
}

// ended returns a channel closed when no transfer started here is in
// flight any more, or nil if none is.
func (g *transferGate) ended() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active == 0 {
		return nil
	}
	return g.idle
}

// applyPastTransfer proposes l and, while Raft refuses it because a
// transfer is in flight, proposes it again once that transfer ends. Raft
// clears its flag a moment after it answers the transfer, and bounds any
// transfer by an election timeout, so past the gate the entry is retried
// with a short backoff for at most two election timeouts. (A target that
// accepts the connection but never answers keeps Raft's flag set until
// its TimeoutNow RPC times out; entries then end "not applied" as before.) When the term
// ends first, the entry was never handed to Raft and this node no longer
// leads: ErrNotLeader, so the request is carried to the next leader. The
// error is classified (see classify).
func (n *Node) applyPastTransfer(l raft.Log, t *leaderTerm) (raft.ApplyFuture, error) {
	deadline := time.Now().Add(2 * n.cfg.ElectionTimeout)
	backoff := time.Millisecond
	for {
		f := n.raft.ApplyLog(l, n.cfg.ApplyTimeout)
		err := f.Error()
		if !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			if err != nil {
				err = classify(err)
			}
			return f, err
		}
		var retry <-chan time.Time
		ended := n.transfers.ended()
		if ended == nil {
			if time.Now().After(deadline) {
				return f, classify(err)
			}
			timer := time.NewTimer(backoff)
			retry = timer.C
			backoff = min(2*backoff, 50*time.Millisecond)
			defer timer.Stop()
		}
		select {
		case <-ended:
			deadline = time.Now().Add(2 * n.cfg.ElectionTimeout)
		case <-retry:
		case <-t.done:
			return f, fmt.Errorf("%w: the term ended during a leadership transfer: %w", ErrNotLeader, err)
		case <-n.closing:
			return f, classify(err)
		}
	}
}
