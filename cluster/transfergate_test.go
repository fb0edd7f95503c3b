package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
