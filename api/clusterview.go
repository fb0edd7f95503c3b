package api

import (
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

// The wire form of cluster's views. cluster knows no HTTP and no JSON;
// these types own the field names of GET /v1/cluster (pinned by
// TestClusterFieldNames), so renaming a Go field in cluster cannot change
// the wire.

// stateView is cluster.State as /v1/cluster shows it (the leader and the
// time since contact are shown by clusterResponse's own fields).
type stateView struct {
	NodeID       string       `json:"node_id"`
	RaftState    string       `json:"raft_state"`
	Term         uint64       `json:"term"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	LastIndex    uint64       `json:"last_index"`
	LeaseNow     int64        `json:"lease_now_ms"`
	Servers      []serverView `json:"servers"`
}

// serverView is one member of the Raft configuration.
type serverView struct {
	ID       string `json:"id"`
	Address  string `json:"raft_address"`
	Suffrage string `json:"suffrage"`
	APIURL   string `json:"api_url,omitempty"`
	Leader   bool   `json:"leader"`
}

// peerView is one member with its role and lag (cluster.PeerProgress).
type peerView struct {
	ID            string  `json:"id"`
	Address       string  `json:"raft_address"`
	Suffrage      string  `json:"suffrage"`
	APIURL        string  `json:"api_url,omitempty"`
	Role          string  `json:"role"`
	Known         bool    `json:"known"`
	LastContact   float64 `json:"last_contact"`
	LastLogIndex  uint64  `json:"last_log_index"`
	EntriesBehind uint64  `json:"entries_behind"`
}

// leaderChangeView is one observed change of leader.
type leaderChangeView struct {
	At       time.Time `json:"at"`
	LeaderID string    `json:"leader_id"`
	Term     uint64    `json:"term"`
}

func viewOfState(st cluster.State) stateView {
	v := stateView{NodeID: st.NodeID, RaftState: st.RaftState, Term: st.Term, CommitIndex: st.CommitIndex,
		AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, LeaseNow: st.LeaseNow}
	if st.Servers != nil {
		v.Servers = make([]serverView, len(st.Servers))
	}
	for i, s := range st.Servers {
		v.Servers[i] = serverView(s)
	}
	return v
}

func viewOfPeers(ps []cluster.PeerProgress) []peerView {
	if ps == nil {
		return nil
	}
	out := make([]peerView, len(ps))
	for i, p := range ps {
		out[i] = peerView(p)
	}
	return out
}

func viewOfLeaderChanges(cs []cluster.LeaderChange) []leaderChangeView {
	if cs == nil {
		return nil
	}
	out := make([]leaderChangeView, len(cs))
	for i, c := range cs {
		out[i] = leaderChangeView(c)
	}
	return out
}
