package cluster

import (
	"errors"
	"net"
	"testing"
	"time"
)

// deadAddress is a loopback address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestAddingAnUnreachableVoterToOneNodeIsRefused: a one-voter cluster that
// adds a voter nobody can reach loses its quorum for good (issue 8 item
// 10). The change is refused unless forced, and the node keeps serving.
func TestAddingAnUnreachableVoterToOneNodeIsRefused(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	lead := tc.leader()
	err := lead.AddVoter("ghost", deadAddress(t))
	if !errors.Is(err, ErrQuorumAtRisk) {
		t.Fatalf("AddVoter of an unreachable node: %v, want ErrQuorumAtRisk", err)
	}
	if got := len(lead.State().Servers); got != 1 {
		t.Fatalf("%d servers after a refused change, want 1", got)
	}
	tc.acquire("still-serving", time.Minute)
	if err := lead.RemoveServer("nobody"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("RemoveServer of a non-member: %v, want ErrNotMember", err)
	}
	if err := lead.RemoveServer(lead.ID(), Force); !errors.Is(err, ErrQuorumAtRisk) {
		t.Fatalf("removing the last voter, forced: %v, want ErrQuorumAtRisk", err)
	}
}

// TestRemovingAVoterWhileAnotherIsDownIsRefused: with one of three voters
// down, removing a live one would leave one reachable voter of two.
func TestRemovingAVoterWhileAnotherIsDownIsRefused(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	var live, down string
	for i, n := range tc.live() {
		if n != lead && down == "" {
			down = n.ID()
			tc.kill(tc.index(n))
		} else if n != lead {
			live = n.ID()
		}
		_ = i
	}
	lead = tc.leader()
	if err := lead.RemoveServer(live); !errors.Is(err, ErrQuorumAtRisk) {
		t.Fatalf("RemoveServer(%s) with %s down: %v, want ErrQuorumAtRisk", live, down, err)
	}
	// Removing the dead one is what an operator should do, and is allowed.
	if err := lead.RemoveServer(down); err != nil {
		t.Fatalf("RemoveServer(%s) of the dead node: %v", down, err)
	}
	waitFor(t, 5*time.Second, "two servers", func() bool { return len(tc.leader().State().Servers) == 2 })
}
