package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// onEveryNode waits until check holds on the FSM of every live node.
func (tc *testCluster) onEveryNode(what string, check func(*fsm.Machine) bool) {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, what+" on every node", func() bool {
		for _, n := range tc.live() {
			if !check(n.FSM()) {
				return false
			}
		}
		return true
	})
}

func holds(name string, fence uint64) func(*fsm.Machine) bool {
	return func(m *fsm.Machine) bool {
		l, ok := m.Get(name)
		return ok && l.Fence == fence
	}
}

func TestClusterReplicatesAndFailsOver(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	if got := lead.Leader(); got.ID != lead.ID() || got.APIURL == "" || !got.IsSelf {
		// The URL comes from the announce entry, which may still be in flight.
		waitFor(t, 5*time.Second, "leader API URL known", func() bool { return lead.Leader().APIURL != "" })
	}
	r := tc.acquire("alpha", time.Minute)
	if r.Outcome != fsm.Granted || r.Lock.Fence == 0 {
		t.Fatalf("acquire: %+v", r)
	}
	tc.onEveryNode("alpha held", holds("alpha", r.Lock.Fence))
	for _, n := range tc.live() {
		if li := n.Leader(); li.ID != lead.ID() || li.APIURL != "http://"+lead.ID()+".invalid" {
			waitFor(t, 5*time.Second, n.ID()+" knows the leader's URL", func() bool {
				li := n.Leader()
				return li.ID == lead.ID() && li.APIURL == "http://"+lead.ID()+".invalid"
			})
		}
	}

	tc.kill(tc.index(lead))
	next := tc.leader()
	if next == lead {
		t.Fatal("killed node still leads")
	}
	l, held, _, err := next.ReadLock(context.Background(), "alpha")
	if err != nil || !held || l.Fence != r.Lock.Fence || !l.Token.Equal(r.Lock.Token) {
		t.Fatalf("after failover: held=%v lock=%+v err=%v, want fence %d", held, l, err, r.Lock.Fence)
	}
	r2 := tc.acquire("beta", time.Minute)
	if r2.Outcome != fsm.Granted || r2.Lock.Fence <= r.Lock.Fence {
		t.Fatalf("new grant fence %d not above %d", r2.Lock.Fence, r.Lock.Fence)
	}
	busy, err := next.Acquire(context.Background(), AcquireRequest{Name: "alpha", Lifetime: time.Second})
	if err != nil || busy.Outcome != fsm.Busy || !busy.Lock.Token.IsZero() || busy.Lock.Fence != r.Lock.Fence {
		t.Fatalf("acquire of a held lock: %+v %v", busy, err)
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	victim := (tc.index(lead) + 1) % 3
	tc.kill(victim)
	var fences []uint64
	for _, name := range []string{"a", "b", "c"} {
		fences = append(fences, tc.acquire(name, time.Minute).Lock.Fence)
	}
	tc.restart(victim)
	for i, name := range []string{"a", "b", "c"} {
		tc.onEveryNode(name+" held", holds(name, fences[i]))
	}
}

func TestSnapshotTruncateRestartRestores(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold = 16
		c.TrailingLogs = 4
		c.SnapshotInterval = time.Hour // snapshots only when the test asks
	})
	lead := tc.leader()
	for i := 0; i < 40; i++ {
		tc.acquire("snap-"+string(rune('a'+i%26))+string(rune('a'+i/26)), time.Hour)
	}
	for _, n := range tc.live() {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.ID(), err)
		}
	}
	victim := (tc.index(lead) + 1) % 3
	first, err := tc.nodes[victim].store.FirstIndex()
	if err != nil || first <= 1 {
		t.Fatalf("log not truncated after snapshot: first index %d, %v", first, err)
	}
	snapIdx := tc.nodes[victim].FSM().AppliedIndex()
	tc.kill(victim)
	n := tc.restart(victim)
	// Start restores the snapshot before it returns: the state is back
	// although the log no longer holds the entries that built it.
	if got := n.FSM().AppliedIndex(); got < first-1 || n.FSM().Len() == 0 {
		t.Fatalf("restarted node applied index %d (log starts at %d, had %d), %d locks", got, first, snapIdx, n.FSM().Len())
	}
	tc.onEveryNode("same digest as the leader", func(m *fsm.Machine) bool {
		li, ld := tc.leader().FSM().Digest()
		mi, md := m.Digest()
		return mi == li && md == ld && m.Len() == 40
	})
}

func TestWipedNodeDoesNotFormItsOwnCluster(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	r := tc.acquire("kept", time.Hour)
	// Every node holds the lock before the wipe; the case where the wiped
	// node was one of only two holders is TestWipedNodeDoesNotElectALaggingNode.
	tc.onEveryNode("kept held", holds("kept", r.Lock.Fence))
	victim := (tc.index(lead) + 1) % 3
	tc.kill(victim)
	// Stop the rest too, so the wiped node is alone when it comes back.
	others := []int{(victim + 1) % 3, (victim + 2) % 3}
	for _, i := range others {
		tc.kill(i)
	}
	if err := os.RemoveAll(tc.cfgs[victim].DataDir); err != nil {
		t.Fatal(err)
	}
	wiped := tc.restart(victim)
	// Alone with an empty log it must never lead: it cannot win a majority.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if wiped.IsLeader() {
			t.Fatal("wiped node elected itself")
		}
		if _, err := wiped.Acquire(context.Background(), AcquireRequest{Name: "kept", Lifetime: time.Second}); err == nil {
			t.Fatal("wiped node granted a lock alone")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// With its peers back it follows them and learns their state.
	for _, i := range others {
		tc.restart(i)
	}
	tc.onEveryNode("kept held", holds("kept", r.Lock.Fence))
}

func TestMinorityGrantsNothing(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	li := tc.index(lead)
	survivor := tc.nodes[(li+1)%3]
	tc.kill(li)
	tc.kill((li + 2) % 3)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r, err := survivor.Acquire(context.Background(), AcquireRequest{Name: "x", Lifetime: time.Second})
		if err == nil {
			t.Fatalf("a minority node answered an acquire: %+v", r)
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNotApplied) && !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("unclassified error: %v", err)
		}
		if _, _, _, err := survivor.ReadLock(context.Background(), "x"); err == nil {
			t.Fatal("a minority node served a linearizable read")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGracefulCloseHandsLeadershipOver(t *testing.T) {
	// With 3 s election timeouts an ordinary election after the leader
	// vanished would take at least 3 s; a handoff takes about one round
	// trip.
	tc := newTestCluster(t, 3, func(c *Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, time.Second
	})
	lead := tc.leader()
	i := tc.index(lead)
	tc.mu.Lock()
	tc.nodes[i] = nil
	tc.mu.Unlock()
	start := time.Now()
	if err := lead.Close(); err != nil {
		t.Fatal(err)
	}
	next := tc.leader()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("new leader %s after %v: leadership was not handed over", next.ID(), took)
	}
}

// A wiped node must not help a lagging node win an election: it may have
// been one of the two nodes holding a committed entry, and has forgotten.
func TestWipedNodeDoesNotElectALaggingNode(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	li := tc.index(lead)
	holder, lagging := (li+1)%3, (li+2)%3
	tc.guardsLifted() // the lagging node must be able to vote at the end
	tc.kill(lagging)
	r := tc.acquire("kept", time.Hour) // committed on the leader and holder only
	tc.kill(li)
	tc.kill(holder)
	if err := os.RemoveAll(tc.cfgs[holder].DataDir); err != nil {
		t.Fatal(err)
	}
	tc.restart(holder)
	tc.restart(lagging)
	// Neither may lead: the lagging node lacks the lock, and the wiped one
	// must not vote for it.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.live() {
			if n.IsLeader() {
				t.Fatalf("%s was elected without the node that holds the committed entry", n.ID())
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.restart(li)
	tc.onEveryNode("kept held", holds("kept", r.Lock.Fence))
}

func TestAddAndRemoveVoterAtRuntime(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	r := tc.acquire("before", time.Hour)
	// A fourth node starts with no voter list: it waits to be added
	// instead of bootstrapping a cluster of its own.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := tc.cfgs[0]
	cfg.NodeID, cfg.Voters, cfg.DataDir = "n4", nil, t.TempDir()
	cfg.RaftBind = l.Addr().String()
	tc.cfgs = append(tc.cfgs, cfg)
	tc.mu.Lock()
	tc.nodes = append(tc.nodes, nil)
	tc.mu.Unlock()
	n4 := tc.start(3, l)
	if err := tc.leader().AddVoter("n4", n4.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	tc.onEveryNode("before held", holds("before", r.Lock.Fence))
	if got := len(tc.leader().State().Servers); got != 4 {
		t.Fatalf("%d servers after adding one, want 4", got)
	}
	if err := tc.leader().RemoveServer("n4"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n4 removed", func() bool { return len(tc.leader().State().Servers) == 3 })
}
