package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// staleLeaderAfter is how long a follower keeps trusting the leader it
// last heard from: three heartbeat intervals (Raft sends a heartbeat
// every tenth of the heartbeat timeout). Past it the follower reports no
// leader, so the API waits for the next one instead of redirecting
// clients to a leader that is likely dead or cut off (it kept redirecting
// to a killed leader for 2.3 s before).
func (n *Node) staleLeaderAfter() time.Duration {
	return 3 * n.cfg.HeartbeatTimeout / 10
}

// leaderFresh reports whether the leader Raft names may be trusted: this
// node is it, or heard from it recently.
func (n *Node) leaderFresh(id string) bool {
	if id == n.cfg.NodeID {
		return true
	}
	last := n.raft.LastContact()
	return !last.IsZero() && time.Since(last) <= n.staleLeaderAfter()
}

// watchLeaderChanges turns Raft's leader observations into
// EventLeaderChanged, so that requests waiting for a leader wake when one
// becomes known instead of polling.
func (n *Node) watchLeaderChanges() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-ch:
			n.emit(Event{Kind: EventLeaderChanged})
		case <-n.raftStopped:
			return
		}
	}
}
