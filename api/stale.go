package api

import (
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
)

// Stale reads and health say how far behind this node may be: entries
// behind the last commit index it heard of, and time since it last heard
// a leader ("unknown" when it never has since it started).
const headerBehind = "X-Doubledutch-Behind"

// staleFields are the body fields of a stale read.
type staleFields struct {
	// Staleness is the time since this node last heard a leader (s).
	Staleness *float64 `json:"staleness,omitempty"`
	// Behind is how many committed entries this node has not applied.
	Behind *uint64 `json:"behind_entries,omitempty"`
}

// checkStale refuses a stale read from a node that has not caught up
// since it started or is known to be far behind (503 too_stale), and
// otherwise reports its lag in headers and returns it for the body.
func (s *Server) checkStale(w http.ResponseWriter) (staleFields, error) {
	lag := s.cluster.Lag()
	if err := lag.StaleReadErr(); err != nil {
		return staleFields{}, err
	}
	sec := lag.SinceContact.Seconds()
	behind := lag.EntriesBehind
	w.Header().Set(headerStaleness, strconv.FormatFloat(sec, 'f', 3, 64))
	w.Header().Set(headerBehind, strconv.FormatUint(behind, 10))
	return staleFields{Staleness: &sec, Behind: &behind}, nil
}

// healthResponse answers GET /v1/health.
type healthResponse struct {
	// Status is "ok", or "behind" when this node cannot serve current
	// state (not caught up since start, or far behind).
	Status   string `json:"status"`
	NodeID   string `json:"node_id"`
	LeaderID string `json:"leader_id"`
	IsLeader bool   `json:"is_leader"`
	// Behind is how many committed entries this node has not applied.
	Behind uint64 `json:"behind_entries"`
	// LastContact is the seconds since a leader was last heard, or
	// "unknown" when none has been since this node started.
	LastContact any  `json:"last_contact"`
	CaughtUp    bool `json:"caught_up"`
	// Guarded: this node forgot Raft state and withholds its vote until
	// caught up (docs/design.md, The vote guard).
	Guarded bool `json:"guarded"`
	// DiskFree is the free space where the data directory lives (bytes);
	// DiskLow is true below the node's low mark (a warning is logged).
	DiskFree uint64 `json:"disk_free_bytes"`
	DiskLow  bool   `json:"disk_low"`
	Reason   string `json:"reason,omitempty"`
}

// health serves GET /v1/health without a key: 200 while this node knows a
// leader and is caught up, 503 otherwise (no_leader; or the health body
// with status "behind"). Container health checks use it.
func (s *Server) health(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	li := s.cluster.Leader()
	if li.ID == "" {
		return newError(ErrNoLeader, "this node knows no leader")
	}
	lag := s.cluster.Lag()
	out := healthResponse{Status: "ok", NodeID: s.selfID, LeaderID: li.ID, IsLeader: li.IsSelf,
		Behind: lag.EntriesBehind, LastContact: "unknown", CaughtUp: lag.CaughtUp, Guarded: lag.Guarded,
		DiskFree: lag.DiskFree, DiskLow: lag.DiskLow}
	if lag.Contacted {
		out.LastContact = lag.SinceContact.Seconds()
	}
	status := http.StatusOK
	if err := lag.StaleReadErr(); err != nil {
		out.Status, out.Reason, status = "behind", err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
	return nil
}
