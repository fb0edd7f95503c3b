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
	return stateView{NodeID: st.NodeID, RaftState: st.RaftState, Term: st.Term, CommitIndex: st.CommitIndex,
		AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, LeaseNow: st.LeaseNow,
		Servers: convert(st.Servers, func(s cluster.ServerInfo) serverView { return serverView(s) })}
}

func viewOfPeers(ps []cluster.PeerProgress) []peerView {
	return convert(ps, func(p cluster.PeerProgress) peerView { return peerView(p) })
}

func viewOfLeaderChanges(cs []cluster.LeaderChange) []leaderChangeView {
	return convert(cs, func(c cluster.LeaderChange) leaderChangeView { return leaderChangeView(c) })
}

// convert maps each element with f, keeping nil nil (it encodes as null,
// or is omitted, where an empty slice would be []).
func convert[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
