package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Membership refusals; match them with errors.Is.
var (
	// ErrNotMember means the node id is not in the configuration: a
	// membership change or a leadership transfer named a node that is not
	// a member.
	ErrNotMember = errors.New("no such member")
	// ErrQuorumAtRisk means that after the change fewer than a quorum of
	// the voters would be reachable, so the cluster could commit nothing
	// (and could not even undo the change). A one-voter cluster that adds
	// a voter nobody can reach is the typical case.
	ErrQuorumAtRisk = errors.New("the change would leave the cluster without a reachable quorum")
)

// MembershipOption modifies a membership change.
type MembershipOption int

// Force skips the reachability check, for an operator who knows the new
// voter will come up (or must remove a voter while others are down). It
// never allows removing the last voter.
const Force MembershipOption = 1

// reachTimeout bounds dialling one voter for the reachability check.
const reachTimeout = 2 * time.Second

// AddVoter adds a node to the cluster as a voter, or updates the address
// of a member; only the leader can. Unless forced, it first checks that a
// quorum of the resulting voters answers on the Raft port.
func (n *Node) AddVoter(id, raftAddr string, opts ...MembershipOption) error {
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	next := []raft.Server{{ID: raft.ServerID(id), Address: raft.ServerAddress(raftAddr), Suffrage: raft.Voter}}
	for _, s := range servers {
		if s.ID != raft.ServerID(id) {
			next = append(next, s)
		}
	}
	if err := n.checkQuorum(next, forced(opts)); err != nil {
		return err
	}
	err = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout).Error()
	if err != nil {
		return classify(err)
	}
	return nil
}

// RemoveServer removes a member from the cluster; only the leader can. An
// id that is not a member is ErrNotMember. Unless forced, it first checks
// that a quorum of the remaining voters answers on the Raft port.
func (n *Node) RemoveServer(id string, opts ...MembershipOption) error {
	servers, err := n.configuration()
	if err != nil {
		return err
	}
	var next []raft.Server
	found := false
	for _, s := range servers {
		if s.ID == raft.ServerID(id) {
			found = true
			continue
		}
		next = append(next, s)
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrNotMember, id)
	}
	if err := n.checkQuorum(next, forced(opts)); err != nil {
		return err
	}
	err = n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error()
	if err != nil {
		return classify(err)
	}
	return nil
}

func forced(opts []MembershipOption) bool {
	for _, o := range opts {
		if o == Force {
			return true
		}
	}
	return false
}

// configuration is the latest configuration, read at the leader: a
// follower's answer would be a guess, and only the leader can change it.
func (n *Node) configuration() ([]raft.Server, error) {
	if n.raft.State() != raft.Leader {
		return nil, classify(raft.ErrNotLeader)
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, classify(err)
	}
	return f.Configuration().Servers, nil
}

// checkQuorum refuses a configuration whose voters could not form a
// quorum: with none left always, and unless forced when fewer than a
// majority of them answer a dial on their Raft address. This node counts
// as reachable; the others are dialled in parallel through the Raft
// stream layer (so with Raft TLS the handshake must succeed too).
func (n *Node) checkQuorum(servers []raft.Server, force bool) error {
	var voters []raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	if len(voters) == 0 {
		return fmt.Errorf("%w: no voter would be left", ErrQuorumAtRisk)
	}
	if force {
		return nil
	}
	need := len(voters)/2 + 1
	reached := n.reachable(voters)
	if reached < need {
		return fmt.Errorf("%w: %d of %d voters answer on their Raft address, %d needed", ErrQuorumAtRisk, reached, len(voters), need)
	}
	return nil
}

// reachable counts the voters that accept a Raft connection.
func (n *Node) reachable(voters []raft.Server) int {
	var (
		count atomic.Int32
		wg    sync.WaitGroup
	)
	for _, v := range voters {
		if v.ID == raft.ServerID(n.cfg.NodeID) {
			count.Add(1)
			continue
		}
		wg.Add(1)
		go func(addr raft.ServerAddress) {
			defer wg.Done()
			c, err := n.stream.Dial(addr, reachTimeout)
			if err != nil {
				n.log.Info("membership check: voter unreachable", "address", addr, "error", err)
				return
			}
			c.Close()
			count.Add(1)
		}(v.Address)
	}
	wg.Wait()
	return int(count.Load())
}

// fixOwnAddress runs when this node starts leading. A node whose Raft port
// is chosen at start (bind port 0 and no advertise address: the original
// single-node command line) listens on a new port after every restart,
// while the configuration still records the old one, and no peer could
// reach it there. The leader records its current address instead. Nodes
// with a fixed or advertised address are left alone: their recorded
// address is the one peers must dial, whatever the listener resolves to.
func (n *Node) fixOwnAddress() {
	if n.cfg.RaftAdvertise != "" {
		return
	}
	if _, port, err := net.SplitHostPort(n.cfg.RaftBind); err != nil || port != "0" {
		return
	}
	servers, err := n.configuration()
	if err != nil {
		return
	}
	self := n.trans.LocalAddr()
	for _, s := range servers {
		if s.ID != raft.ServerID(n.cfg.NodeID) || s.Address == self || s.Suffrage != raft.Voter {
			continue
		}
		n.log.Info("recording this node's new Raft address", "from", s.Address, "to", self)
		if err := n.raft.AddVoter(s.ID, self, 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("recording this node's Raft address failed", "error", err)
		}
	}
}
