package cluster

import "github.com/hashicorp/raft"

// AddVoter adds a node to the cluster; only the leader can.
func (n *Node) AddVoter(id, raftAddr string) error {
	err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout).Error()
	if err != nil {
		return classify(err)
	}
	return nil
}

// RemoveServer removes a node from the cluster; only the leader can.
func (n *Node) RemoveServer(id string) error {
	err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error()
	if err != nil {
		return classify(err)
	}
	return nil
}
