package cluster

import (
	"testing"
	"time"
)

// TestLoneVoterLeadsAtOnce: a one-voter cluster elects itself without
// waiting a heartbeat timeout, at first start and at restart after
// replaying its log. The heartbeat timeout is set far above the wait, so
// the test fails if the node only campaigns when the timeout fires.
func TestLoneVoterLeadsAtOnce(t *testing.T) {
	slow := func(c *Config) {
		c.HeartbeatTimeout, c.ElectionTimeout = time.Minute, time.Minute
	}
	tc := newTestCluster(t, 1, slow)
	waitFor(t, 10*time.Second, "the lone voter to lead", tc.nodes[0].IsLeader)
	r := tc.acquire("kept", time.Hour)
	tc.kill(0)
	n := tc.restart(0)
	waitFor(t, 10*time.Second, "the restarted lone voter to lead", n.IsLeader)
	if l, ok := n.FSM().Get("kept"); !ok || l.Fence != r.Lock.Fence {
		t.Fatalf("after restart: %+v held=%v, want fence %d", l, ok, r.Lock.Fence)
	}
}

// TestMemberDoesNotCampaignAtStart: with more than one voter a starting
// node waits to hear from a leader (nothing is nudged), so a restart
// never disturbs a healthy leader.
func TestMemberDoesNotCampaignAtStart(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	term := lead.State().Term
	follower := (tc.index(lead) + 1) % 3
	tc.kill(follower)
	n := tc.restart(follower)
	waitFor(t, 10*time.Second, "the restarted node to hear from the leader", func() bool {
		return n.Leader().ID == lead.ID()
	})
	tc.acquire("after", time.Minute)
	if got := lead.State().Term; got != term || !lead.IsLeader() {
		t.Fatalf("leader's term moved from %d to %d (leading=%v) after a follower restart", term, got, lead.IsLeader())
	}
}

// TestFreshClusterFirstGrant reports how soon a brand-new three-node
// cluster with the production timeouts grants its first lock after its
// last node started (goal 1.5 s; reported, not asserted).
func TestFreshClusterFirstGrant(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 0, 0, 0 })
	started := time.Now() // newTestCluster returns right after the last Start
	r := tc.acquire("first", time.Minute)
	t.Logf("first grant (fence %d) %v after the last node started", r.Lock.Fence, time.Since(started))
}
