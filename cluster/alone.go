package cluster

import "github.com/hashicorp/raft"

// campaignIfAlone makes a node whose configuration has exactly one voter,
// itself, elect itself at once instead of after a heartbeat timeout (1-2
// heartbeat timeouts in hashicorp/raft, which waits for a leader that
// cannot exist). The original DoubleDutch serves as soon as it listens,
// and its own test suite relies on that.
//
// Raft has no "campaign now" call, but ReloadConfig with a shorter
// heartbeat timeout nudges a follower's heartbeat timer to fire at once
// (followerNotifyCh); the follower then finds no contact and campaigns,
// and with one voter its own (pre-)vote is a quorum. The second reload
// restores the configured timeout. Leadership still goes through the
// normal path: the new leader's Barrier applies the whole log replayed
// from disk before it serves (see lead).
//
// With more voters nothing changes: a restarting member must wait to hear
// from the leader rather than disturb it.
func (n *Node) campaignIfAlone() {
	if n.aloneInConfiguration() {
		n.nudgeHeartbeatTimer()
	}
}

// nudgeHeartbeatTimer makes a follower's Raft heartbeat timer fire now:
// Raft then checks its last contact against the heartbeat timeout, and
// campaigns only if that much time has passed without a leader.
func (n *Node) nudgeHeartbeatTimer() {
	n.nudgeMu.Lock()
	defer n.nudgeMu.Unlock()
	rc := n.raft.ReloadableConfig()
	nudge := rc
	nudge.HeartbeatTimeout = rc.HeartbeatTimeout - 1
	if err := n.raft.ReloadConfig(nudge); err != nil {
		// Only when the lease timeout equals the heartbeat timeout: Raft's
		// own timer then fires a little later.
		n.log.Debug("cannot nudge the heartbeat timer", "error", err)
		return
	}
	if err := n.raft.ReloadConfig(rc); err != nil {
		n.log.Warn("restoring the heartbeat timeout failed", "error", err)
	}
}

// aloneInConfiguration reports whether this node is the only voter of the
// latest configuration it knows.
func (n *Node) aloneInConfiguration() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	voters, self := 0, false
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || s.ID == raft.ServerID(n.cfg.NodeID)
		}
	}
	return voters == 1 && self
}
