package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// The v1 cluster and health endpoints.

func (s *Server) clusterRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v1/cluster", auth: authBearer, where: anyNode, handle: s.clusterState},
		{method: http.MethodGet, path: "/v1/health", auth: authNone, where: anyNode, handle: s.health},
	}
}

// leaderView is the leader as /v1/cluster shows it.
type leaderView struct {
	ID     string `json:"id"`
	APIURL string `json:"api_url"`
	IsSelf bool   `json:"is_self"`
}

// clusterResponse answers GET /v1/cluster: this node's view.
type clusterResponse struct {
	stateView
	Leader leaderView `json:"leader"`
	// LastContact is the time since this node last heard from the leader
	// (seconds; 0 on the leader).
	LastContact float64 `json:"last_contact"`
	// Waiters is the number of requests waiting at this node.
	Waiters int `json:"waiters"`
	// StateDigest (with ?digest=true) hashes the node's whole state at
	// DigestIndex: equal pairs on two nodes mean equal state.
	StateDigest string  `json:"state_digest,omitempty"`
	DigestIndex *uint64 `json:"digest_index,omitempty"`
	opsView
}

// clusterState serves GET /v1/cluster. Every node answers for itself.
// With ?digest=true it adds a hash of the node's whole state, which costs
// time in proportion to the number of locks.
func (s *Server) clusterState(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q, err := parseQuery(r.URL.RawQuery, "digest")
	if err != nil {
		return err
	}
	st := s.cluster.State()
	li := st.Leader
	out := clusterResponse{
		stateView:   viewOfState(st),
		Leader:      leaderView{ID: li.ID, APIURL: li.APIURL, IsSelf: li.IsSelf},
		LastContact: st.LastContact.Seconds(),
		Waiters:     s.locks.Size(),
		opsView:     s.opsView(),
	}
	switch q.Get("digest") {
	case "", "false", "0":
	case "true", "1":
		idx, d := s.cluster.StateDigest()
		out.StateDigest, out.DigestIndex = d, &idx
	default:
		return badRequest("digest must be true or false")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
