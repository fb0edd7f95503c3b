package cluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/fsm"
	"github.com/doubledutch/doubledutch/internal/ddtest"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

func testLogger(t testing.TB, level hclog.Level) hclog.Logger {
	return testlog.New(t, "dd", level)
}

// testCluster is a cluster of real nodes over loopback TCP in one process.
type testCluster struct {
	t      testing.TB
	cfgs   []Config
	nodes  []*Node
	mu     sync.Mutex
	tuning func(*Config)
}

// newTestCluster starts size nodes that bootstrap from one voter list.
func newTestCluster(t testing.TB, size int, tuning func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, tuning: tuning}
	logger := testLogger(t, hclog.Warn)
	var voters []Voter
	var listeners []net.Listener
	for i := 0; i < size; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
		voters = append(voters, Voter{ID: fmt.Sprintf("n%d", i+1), Address: l.Addr().String()})
	}
	base := t.TempDir()
	for i := 0; i < size; i++ {
		cfg := Config{
			NodeID:   voters[i].ID,
			RaftBind: voters[i].Address,
			APIURL:   "http://" + voters[i].ID + ".invalid",
			DataDir:  filepath.Join(base, voters[i].ID),
			Voters:   voters,
			// The shipped defaults: shorter ones lose leaders to CPU and
			// fsync stalls on a loaded machine (see Config), and a test
			// holding a leader across a fill then fails for no bug.
			HeartbeatTimeout:   DefaultHeartbeatTimeout,
			ElectionTimeout:    DefaultElectionTimeout,
			LeaderLeaseTimeout: DefaultLeaderLeaseTimeout,
			Logger:             logger,
		}
		if tuning != nil {
			tuning(&cfg)
		}
		tc.cfgs = append(tc.cfgs, cfg)
		tc.nodes = append(tc.nodes, nil)
	}
	for i := range tc.cfgs {
		tc.start(i, listeners[i])
	}
	t.Cleanup(tc.closeAll)
	return tc
}

func (tc *testCluster) start(i int, l net.Listener) *Node {
	tc.t.Helper()
	cfg := tc.cfgs[i]
	cfg.RaftListener = l
	n, err := Start(cfg)
	if err != nil {
		tc.t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	tc.mu.Lock()
	tc.nodes[i] = n
	tc.mu.Unlock()
	return n
}

// restart starts node i again on its old address and data directory.
func (tc *testCluster) restart(i int) *Node {
	tc.t.Helper()
	var l net.Listener
	waitFor(tc.t, 5*time.Second, "raft port free again", func() bool {
		var err error
		l, err = net.Listen("tcp", tc.cfgs[i].RaftBind)
		return err == nil
	})
	return tc.start(i, l)
}

// kill stops node i the way a crash would (no leadership handoff).
func (tc *testCluster) kill(i int) {
	tc.mu.Lock()
	n := tc.nodes[i]
	tc.nodes[i] = nil
	tc.mu.Unlock()
	if n != nil {
		_ = n.Kill()
	}
}

func (tc *testCluster) closeAll() {
	for i := range tc.nodes {
		tc.mu.Lock()
		n := tc.nodes[i]
		tc.nodes[i] = nil
		tc.mu.Unlock()
		if n != nil {
			_ = n.Kill()
		}
	}
}

func (tc *testCluster) live() []*Node {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var out []*Node
	for _, n := range tc.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// leader waits for exactly one live node to lead and be ready.
func (tc *testCluster) leader() *Node {
	tc.t.Helper()
	var lead *Node
	waitFor(tc.t, 10*time.Second, "a ready leader", func() bool {
		lead = nil
		for _, n := range tc.live() {
			if n.IsLeader() {
				if lead != nil {
					return false
				}
				lead = n
			}
		}
		return lead != nil
	})
	return lead
}

// guardsLifted waits until no live node holds the vote guard every
// brand-new node starts with (it cannot tell itself from a wiped one, and
// the guard survives restarts until the node catches up with a leader). A
// test that kills a node it later needs as a voter calls it first: killed
// still guarded, the node comes back guarded, and with a second guarded
// node of three no leader can ever be elected.
func (tc *testCluster) guardsLifted() {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, "every node's start-up vote guard lifted", func() bool {
		for _, n := range tc.live() {
			if n.guard.isGuarded() {
				return false
			}
		}
		return true
	})
}

func (tc *testCluster) index(n *Node) int {
	tc.mu.Lock()
	idx := -1
	for j, o := range tc.nodes {
		if o == n {
			idx = j
		}
	}
	tc.mu.Unlock()
	if idx < 0 {
		tc.t.Fatalf("node %s is not live", n.ID())
	}
	return idx
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = ddtest.WaitFor

// acquire takes a lock on the current leader, retrying outcomes that were
// certainly not applied (an election may be under way).
func (tc *testCluster) acquire(name string, lifetime time.Duration) fsm.Result {
	tc.t.Helper()
	var res fsm.Result
	waitFor(tc.t, 10*time.Second, "acquire "+name, func() bool {
		r, err := tc.leader().Acquire(context.Background(), AcquireRequest{Name: name, Lifetime: lifetime, RequestID: "acq-" + name})
		if err != nil {
			tc.t.Logf("acquire %s: %v (retrying)", name, err)
			return false
		}
		res = r
		return true
	})
	return res
}
