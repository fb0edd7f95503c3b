package cluster

import (
	"errors"
	"net"
	"os"
	"sync"
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
	if last.IsZero() || last.UnixNano() < n.peerClosed.Load() {
		return false // no contact yet, or a peer hung up since
	}
	return time.Since(last) <= n.staleLeaderAfter()
}

// watchLeaderChanges is the node's one Raft observer. A leader change
// becomes EventLeaderChanged, so that requests waiting for a leader wake
// when one becomes known instead of polling; leader and membership changes
// are also logged and kept for operators (noteObservation).
func (n *Node) watchLeaderChanges() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.PeerObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case o := <-ch:
			n.noteObservation(o)
			if _, ok := o.Data.(raft.LeaderObservation); ok {
				n.emit(Event{Kind: EventLeaderChanged})
			}
		case <-n.raftStopped:
			return
		}
	}
}

// watchLeaderContact makes a follower notice a silent leader one heartbeat
// timeout after the last contact, not up to three: hashicorp/raft checks
// for contact only when a timer drawn from [HT, 2HT) fires, and a follower
// that has not checked yet still names the old leader and refuses the
// other follower's (pre-)vote, so a failover took two election rounds
// (1.0-1.4 s at HT 500 ms, 2.6 s and more at 1 s). Nudging both followers'
// timers as soon as the timeout has passed lets the first candidate win
// at once. Pre-vote still protects a healthy leader: a follower cut off
// alone campaigns in vain without raising the term, and a node that
// restarts has had no contact yet, so it is never nudged.
func (n *Node) watchLeaderContact() {
	defer n.wg.Done()
	hb := n.cfg.HeartbeatTimeout
	tick := time.NewTicker(hb / 10)
	defer tick.Stop()
	var nudged time.Time // the last contact a nudge was for
	for {
		select {
		case <-tick.C:
		case <-n.raftStopped:
			return
		}
		last := n.raft.LastContact()
		if last.IsZero() || last.Equal(nudged) || time.Since(last) < hb || n.raft.State() != raft.Follower {
			continue
		}
		nudged = last
		n.log.Debug("no contact with the leader for a heartbeat timeout; checking now", "last_contact", last)
		n.nudgeHeartbeatTimer()
	}
}

// peerCloseListener notes when a peer closes a Raft connection it opened
// to this node. A leader killed with -9 closes every connection at once
// (its kernel does), a whole heartbeat timeout before its silence would
// tell; followers then stop redirecting clients to it at once (see
// leaderFresh) and hold them for the next leader instead. A connection a
// live leader closes for its own reasons costs at most one heartbeat
// interval of waiting: its next heartbeat restores the trust.
type peerCloseListener struct {
	net.Listener
	closed func()
}

func (l *peerCloseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &peerCloseConn{Conn: c, closed: l.closed}, nil
}

// peerCloseConn reports the first end of input that this side did not
// cause by closing the connection itself.
type peerCloseConn struct {
	net.Conn
	closed func()
	once   sync.Once
}

func (c *peerCloseConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.once.Do(c.closed)
	}
	return n, err
}

// notePeerClose records that a peer closed a Raft connection now.
func (n *Node) notePeerClose() {
	n.peerClosed.Store(time.Now().UnixNano())
}
