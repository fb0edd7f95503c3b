package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/doubledutch/doubledutch/cluster"
)

// mustRedirect reports whether this node must send r to the leader.
func (s *Server) mustRedirect(r *http.Request, wh where) bool {
	switch wh {
	case anyNode:
		return false
	case staleOK:
		if isStale(r) {
			return false
		}
	}
	return !s.cluster.Leader().IsSelf
}

// redirectToLeader is the one place a request leaves for the leader: 307
// keeps the method and body (DELETE stays DELETE), never 301, which
// clients cache. With no leader known, or while this node is the leader
// but not yet ready, it answers 503 with Retry-After.
func (s *Server) redirectToLeader(w http.ResponseWriter, r *http.Request, sh shape) {
	li := s.cluster.Leader()
	if li.APIURL == "" || li.IsSelf || li.ID == s.selfID {
		s.writeError(w, r, sh, newError(ErrNoLeader, "no leader is ready to serve; retry shortly"))
		return
	}
	target := strings.TrimRight(li.APIURL, "/") + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", target)
	writeJSON(w, http.StatusTemporaryRedirect, redirectBody{LeaderID: li.ID, Location: target})
}

// redirectBody is the body of a 307, for people reading it with curl.
type redirectBody struct {
	LeaderID string `json:"leader_id"`
	Location string `json:"location"`
}

// isNotLeader reports a request that may go to the leader instead: nothing
// was proposed. An error that also says the outcome is unknown is not one
// (a retry elsewhere might act twice), so it is answered as unknown.
func isNotLeader(err error) bool {
	return errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrUnknownOutcome)
}
