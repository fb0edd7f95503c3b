package cluster

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// leaderNot waits for a leader other than id, moving leadership off id.
func (tc *testCluster) leaderNot(id string) *Node {
	tc.t.Helper()
	lead := tc.leader()
	if lead.ID() != id {
		return lead
	}
	if err := lead.raft.LeadershipTransfer().Error(); err != nil {
		tc.t.Fatal(err)
	}
	waitFor(tc.t, 10*time.Second, "a leader other than "+id, func() bool {
		lead = tc.leader()
		return lead.ID() != id
	})
	return lead
}

// A follower that hears the leader's commit index but cannot store
// entries (as on a full disk) knows how far behind it is and refuses
// stale reads past the bound; caught up again, it answers them.
func TestFarBehindFollowerRefusesStaleReads(t *testing.T) {
	var cutting atomic.Bool
	tc := newTestCluster(t, 3, func(c *Config) {
		c.StaleReadMaxBehind = 100
		if c.NodeID == "n3" {
			c.interceptRPC = func(rpc raft.RPC) bool {
				req, ok := rpc.Command.(*raft.AppendEntriesRequest)
				return ok && cutting.Load() && len(req.Entries) > 0
			}
		}
	})
	lead := tc.leaderNot("n3")
	f := tc.nodes[2]
	tc.acquire("a", time.Hour)
	waitFor(t, 10*time.Second, "follower caught up", func() bool { return f.Lag().StaleReadErr() == nil })
	if l := f.Lag(); !l.Contacted || l.IsLeader {
		t.Fatalf("follower lag %+v", l)
	}
	cutting.Store(true)
	fillLog(t, lead, 300)
	tc.acquire("after-cut", time.Hour) // carries the commit index past the fill
	waitFor(t, 10*time.Second, "follower knows it is behind", func() bool { return f.Lag().EntriesBehind > 100 })
	if err := f.Lag().StaleReadErr(); !errors.Is(err, ErrTooStale) {
		t.Fatalf("far-behind follower: stale read error %v, want ErrTooStale (lag %+v)", err, f.Lag())
	}
	if _, held := f.FSM().Get("after-cut"); held {
		t.Fatal("the cut follower has the entry it was denied")
	}
	cutting.Store(false)
	waitFor(t, 10*time.Second, "follower caught up again", func() bool {
		l := f.Lag()
		return l.StaleReadErr() == nil && l.EntriesBehind == 0
	})
	if l := lead.Lag(); !l.IsLeader || !l.CaughtUp || l.EntriesBehind != 0 || l.SinceContact != 0 {
		t.Fatalf("leader lag %+v", l)
	}
}

// A node that has heard no leader since it started has nothing it can
// vouch for: stale reads are refused, and the time since contact is
// unknown rather than huge.
func TestNodeNeverCaughtUpRefusesStaleReads(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.acquire("a", time.Hour)
	tc.guardsLifted() // nodes 0 and 1 alone must be able to elect a leader
	tc.closeAll()
	n := tc.restart(0)
	l := n.Lag()
	if l.Contacted || l.CaughtUp || l.IsLeader {
		t.Fatalf("lone restarted node lag %+v", l)
	}
	if err := l.StaleReadErr(); !errors.Is(err, ErrTooStale) {
		t.Fatalf("stale read error %v, want ErrTooStale", err)
	}
	tc.restart(1)
	waitFor(t, 10*time.Second, "caught up once a leader is back", func() bool { return n.Lag().StaleReadErr() == nil })
}
