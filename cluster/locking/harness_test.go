package locking

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

// The waiting layer is tested on a real three-node Raft cluster over
// loopback TCP, with fsync on: the handoff's claim (same commit) is about
// real log entries.

func testLogger(t testing.TB) hclog.Logger {
	return testlog.New(t, "t", hclog.Warn)
}

// startCluster starts size nodes and returns them with the ready leader.
func startCluster(t testing.TB, size int) ([]*cluster.Node, *cluster.Node) {
	t.Helper()
	var voters []cluster.Voter
	var ls []net.Listener
	for i := 0; i < size; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		voters = append(voters, cluster.Voter{ID: fmt.Sprintf("n%d", i+1), Address: l.Addr().String()})
	}
	base, log := t.TempDir(), testLogger(t)
	var nodes []*cluster.Node
	for i := range voters {
		n, err := cluster.Start(cluster.Config{
			NodeID: voters[i].ID, RaftBind: voters[i].Address, RaftListener: ls[i],
			APIURL: "http://" + voters[i].ID + ".invalid", DataDir: filepath.Join(base, voters[i].ID),
			Voters: voters, HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			LeaderLeaseTimeout: 150 * time.Millisecond, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		t.Cleanup(func() { _ = n.Kill() })
	}
	var lead *cluster.Node
	waitFor(t, "a ready leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				lead = n
				return true
			}
		}
		return false
	})
	return nodes, lead
}

func newService(t testing.TB, c Cluster) *Service {
	s := New(c, Config{MaxWaiters: 1000, MaxWaitersPerName: 100, ProposeTimeout: 10 * time.Second}, testLogger(t))
	t.Cleanup(s.Close)
	return s
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
