package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/fsm"
)

// The v1 listing, cluster and health endpoints.

func (s *Server) clusterRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v1/cluster", auth: authBearer, where: anyNode, handle: s.clusterState},
		{method: http.MethodGet, path: "/v1/health", auth: authNone, where: anyNode, handle: s.health},
	}
}

// listResponse answers GET /v1/locks.
type listResponse struct {
	Locks []listItem `json:"locks"`
	// Next is the cursor for the following page (pass it as after=);
	// absent on the last page.
	Next string `json:"next,omitempty"`
	staleFields
}

// listItem is one lock of a listing with its waiters at this node (the
// leader; 0 on a stale read from a follower).
type listItem struct {
	lockView
	Waiters int `json:"waiters"`
}

// listQuery is the validated query of GET /v1/locks.
type listQuery struct {
	Prefix, After string
	Limit         int
}

// listLocks serves GET /v1/locks?prefix&after&limit[&stale]: one page of
// held locks in name order.
func (s *Server) listLocks(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	lq, err := s.parseList(r.URL.RawQuery)
	if err != nil {
		return err
	}
	var (
		locks []fsm.Lock
		now   int64
		stale staleFields
	)
	// One extra lock tells whether another page follows.
	if isStale(r) {
		if stale, err = s.checkStale(w); err != nil {
			return err
		}
		locks, now, _ = s.cluster.StaleListLocks(lq.Prefix, lq.After, lq.Limit+1)
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProposeTimeout)
		defer cancel()
		if locks, now, err = s.cluster.ListLocks(ctx, lq.Prefix, lq.After, lq.Limit+1); err != nil {
			return err
		}
	}
	out := listResponse{Locks: make([]listItem, 0, min(len(locks), lq.Limit)), staleFields: stale}
	if len(locks) > lq.Limit {
		locks = locks[:lq.Limit]
		out.Next = locks[len(locks)-1].Name
	}
	for _, l := range locks {
		out.Locks = append(out.Locks, listItem{lockView: viewOf(l, now), Waiters: s.waitersFor(l.Name)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) parseList(raw string) (listQuery, error) {
	q, err := parseQuery(raw, "prefix", "after", "limit", "stale")
	if err != nil {
		return listQuery{}, err
	}
	lq := listQuery{Prefix: q.Get("prefix"), After: q.Get("after"), Limit: DefaultListLimit}
	if err := checkText("prefix", lq.Prefix, s.cfg.MaxNameLength); err != nil {
		return lq, err
	}
	if err := checkText("after", lq.After, s.cfg.MaxNameLength); err != nil {
		return lq, err
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > MaxListLimit {
			return lq, badRequest("limit must be a whole number from 1 to %d", MaxListLimit)
		}
		lq.Limit = n
	}
	if v, ok := q["stale"]; ok && v[0] != "" && v[0] != "true" && v[0] != "1" && v[0] != "false" && v[0] != "0" {
		return lq, badRequest("stale must be true or false")
	}
	return lq, nil
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
