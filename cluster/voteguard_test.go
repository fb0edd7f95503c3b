package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// cutAfterFirstBatch lets a restarted node take the first catch-up batch
// (the AppendEntries that follows the leader's probe) and answers every
// later AppendEntries with an error while cutting is set: a catch-up cut
// off at a batch boundary.
func cutAfterFirstBatch(cutting *atomic.Bool) func(raft.RPC) bool {
	var firstBatchSent atomic.Bool
	return func(rpc raft.RPC) bool {
		req, ok := rpc.Command.(*raft.AppendEntriesRequest)
		if !ok || !cutting.Load() || len(req.Entries) == 0 {
			return false
		}
		if req.PrevLogEntry <= 1 {
			firstBatchSent.Store(true)
			return false
		}
		return firstBatchSent.Load()
	}
}

// fillLog appends at least count entries to the leader's log, proposing
// from several goroutines at once. Group commit packs concurrent commands
// into one entry, so it proposes until the log has grown by count
// entries, not count commands: the callers need the entries (catch-up
// batches, a follower far behind, a large raft.db).
func fillLog(t *testing.T, lead *Node, count int) {
	t.Helper()
	target := lead.raft.LastIndex() + uint64(count)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lead.raft.LastIndex() < target {
				name := fmt.Sprintf("fill-%d", next.Add(1))
				if _, err := lead.Acquire(context.Background(), AcquireRequest{Name: name, Lifetime: time.Hour, RequestID: name}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("filling the log: %v", err)
	}
}

// The reviewer's scenario (issue 8 item 1): the wiped holder of a
// committed entry must stay guarded after the first catch-up batch, even
// though that batch ends with an entry of the current leader's term.
func TestWipedNodeGuardedPastFirstCatchUpBatch(t *testing.T) {
	testWipedHolderStaysGuarded(t, false)
}

// The same, with the wiped node restarted in the middle of catching up:
// the guard is on disk, so the restart does not drop it.
func TestWipedNodeGuardedAcrossRestartMidCatchUp(t *testing.T) {
	testWipedHolderStaysGuarded(t, true)
}

func testWipedHolderStaysGuarded(t *testing.T, restartMidCatchUp bool) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	li := tc.index(lead)
	holder, lagging := (li+1)%3, (li+2)%3
	tc.guardsLifted() // the lagging node must be able to vote at the end
	tc.kill(lagging)
	// More than two batches of 256 entries, then the entry that matters:
	// committed on the leader and the holder only.
	fillLog(t, lead, 600)
	kept := tc.acquire("kept", time.Hour)
	keptIndex := lead.FSM().AppliedIndex()
	waitFor(t, 10*time.Second, "holder has the kept entry", func() bool {
		return tc.nodes[holder].raft.LastIndex() >= keptIndex
	})

	tc.kill(holder)
	if err := os.RemoveAll(tc.cfgs[holder].DataDir); err != nil {
		t.Fatal(err)
	}
	var cutting atomic.Bool
	cutting.Store(true)
	tc.cfgs[holder].interceptRPC = cutAfterFirstBatch(&cutting)
	h := tc.restart(holder)
	waitFor(t, 10*time.Second, "the first catch-up batch", func() bool {
		return h.raft.LastIndex() >= 257 && h.raft.CurrentTerm() == lead.raft.CurrentTerm()
	})
	if got := h.raft.LastIndex(); got >= keptIndex {
		t.Fatalf("catch-up was not cut: holder at %d, kept entry at %d", got, keptIndex)
	}
	t.Logf("holder cut off at index %d of %d", h.raft.LastIndex(), keptIndex)
	if restartMidCatchUp {
		tc.kill(holder)
		h = tc.restart(holder)
	}
	tc.kill(li)
	tc.restart(lagging)
	// Neither may lead: the lagging node lacks the lock, and the holder
	// lacks it too now; its vote must not make up a majority.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.live() {
			if n.IsLeader() {
				l, held := n.FSM().Get("kept")
				t.Fatalf("%s was elected (last index %d) without the node holding the committed entry %d; kept held=%v fence=%d, want %d",
					n.ID(), n.raft.LastIndex(), keptIndex, held, l.Fence, kept.Lock.Fence)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cutting.Store(false)
	tc.restart(li)
	tc.onEveryNode("kept held", holds("kept", kept.Lock.Fence))
	if r := tc.acquire("after", time.Hour); r.Lock.Fence <= kept.Lock.Fence {
		t.Fatalf("fencing token went backwards: %d after %d", r.Lock.Fence, kept.Lock.Fence)
	}
	waitFor(t, 10*time.Second, "holder's guard lifted", func() bool { return !h.guard.isGuarded() })
	if _, err := os.Stat(tc.cfgs[holder].DataDir + "/" + guardFile); !os.IsNotExist(err) {
		t.Fatalf("guard record still on disk after lifting: %v", err)
	}
}

// Late messages: an AppendEntries of an older term than the node's (a
// deposed leader's, delivered late) neither sets nor moves the guard's
// target; a newer term's leader resets it to its own commit index.
func TestVoteGuardIgnoresDeposedLeaderMessages(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	tc.acquire("a", time.Hour)
	f := tc.nodes[(tc.index(lead)+1)%3]
	g := f.guard
	term := f.raft.CurrentTerm()
	g.mu.Lock()
	g.term, g.target = 0, 0
	g.mu.Unlock()
	g.guarded.Store(true)
	entry := []*raft.Log{{Index: 1_000_000, Term: term - 1}}
	g.noteAppend(&raft.AppendEntriesRequest{Term: term - 1, PrevLogEntry: 999_999, LeaderCommitIndex: 1_000_000, Entries: entry})
	g.mu.Lock()
	gotTerm, gotTarget := g.term, g.target
	g.mu.Unlock()
	if gotTerm != 0 || gotTarget != 0 {
		t.Fatalf("a deposed leader's late message moved the guard: term %d target %d", gotTerm, gotTarget)
	}
	// The current leader's next message sets it, and lifts the guard once
	// the log reaches the leader's commit index.
	tc.acquire("b", time.Hour)
	waitFor(t, 10*time.Second, "guard lifted by the current leader", func() bool { return !g.isGuarded() })
	g.mu.Lock()
	gotTerm = g.term
	g.mu.Unlock()
	if gotTerm != term {
		t.Fatalf("guard term %d, want the leader's %d", gotTerm, term)
	}
	// A newer term's message resets the target to that leader's commit.
	g.guarded.Store(true)
	g.noteAppend(&raft.AppendEntriesRequest{Term: term + 1, PrevLogEntry: 5, LeaderCommitIndex: 1_000_000})
	if g.caughtUp() {
		t.Fatal("guard lifted although the newer leader's commit index is far ahead")
	}
	g.guarded.Store(false)
}

// The leader's first message after a restart carries its next index for
// the node as the previous entry: above everything the node acknowledged
// in this term, which the leader may still count towards a commit (its
// match index never goes down). The guard holds until the log reaches it,
// even when the commit index is lower.
func TestVoteGuardWaitsForTheLeadersNextIndex(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	tc.acquire("a", time.Hour)
	f := tc.nodes[(tc.index(lead)+1)%3]
	g := f.guard
	term := f.raft.CurrentTerm()
	next := lead.raft.LastIndex() + 40
	g.guarded.Store(true)
	g.noteAppend(&raft.AppendEntriesRequest{Term: term, PrevLogEntry: next, LeaderCommitIndex: lead.raft.CommitIndex()})
	if g.caughtUp() {
		t.Fatal("guard lifted below the previous-entry index the leader sent")
	}
	fillLog(t, lead, 60)
	waitFor(t, 10*time.Second, "guard lifted past that index", func() bool { return !g.isGuarded() })
	if last := f.raft.LastIndex(); last < next {
		t.Fatalf("lifted at %d, below %d", last, next)
	}
}
