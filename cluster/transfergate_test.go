package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProposalsDuringTransferAreHeldNotRefused: while a leadership
// transfer is in flight Raft refuses new entries; the proposer holds them
// until the transfer ends, so each proposal made meanwhile either commits
// or, this node having handed leadership over, fails with ErrNotLeader,
// which the API carries to the new leader. Before, each was answered
// "not applied" at a node that still led: a 503 to the client, and a
// waiter handed the lock in such an entry lost its turn.
func TestProposalsDuringTransferAreHeldNotRefused(t *testing.T) {
	for round := 0; round < 3; round++ {
		tc := newTestCluster(t, 3, nil)
		lead := tc.leader()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var refused []error
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, err := lead.Acquire(context.Background(), AcquireRequest{
						Name: fmt.Sprintf("l-%d-%d", g, i), Lifetime: time.Minute, RequestID: fmt.Sprintf("during-transfer-%d-%d", g, i)})
					if errors.Is(err, ErrNotLeader) {
						return // handed over: nothing more to propose here
					}
					if err != nil {
						mu.Lock()
						refused = append(refused, err)
						mu.Unlock()
					}
				}
			}()
		}
		if err := lead.TransferLeadership(""); err != nil {
			t.Fatalf("transfer: %v", err)
		}
		close(stop)
		wg.Wait()
		for _, err := range refused {
			t.Errorf("round %d: a proposal during the transfer: %v", round, err)
		}
		tc.closeAll()
	}
}

// TestHandOverReturnsAfterSteppingDown: when HandOver returns, this node
// has told its subscribers that it stopped leading, so the waiting layer
// has carried its waiters before serve's shutdown closes the API. Raft
// answers the transfer first; returning then let api.Close end those
// waiters as "shutting down" (a 503 in TestWaiterCarriedAcrossLeaderStepDown).
func TestHandOverReturnsAfterSteppingDown(t *testing.T) {
	for round := 0; round < 5; round++ {
		tc := newTestCluster(t, 3, nil)
		lead := tc.leader()
		var stepped atomic.Bool
		cancel := lead.Subscribe(func(ev Event) {
			if ev.Kind == EventLeadership && !ev.IsLeader {
				stepped.Store(true)
			}
		})
		lead.HandOver()
		if !stepped.Load() {
			t.Fatalf("round %d: HandOver returned before the node told that it stopped leading", round)
		}
		cancel()
		tc.closeAll()
	}
}
