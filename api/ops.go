package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// The operations endpoints: /healthz, /readyz, leadership transfer,
// backup, the node list with lag, metrics and the status page.

// Ops is what the operations endpoints need beyond Cluster. *cluster.Node
// satisfies it. It is a separate interface so that a Cluster without it
// (the handlers' tests' fake) still serves the lock API: New registers the
// endpoints that need Ops only when the Cluster has it.
type Ops interface {
	// Peers lists the configuration with each member's progress.
	Peers() []cluster.PeerProgress
	// LeaderChanges returns recent leader changes and their total count.
	LeaderChanges() (recent []cluster.LeaderChange, total uint64)
	// TransferLeadership hands leadership to target, or to any
	// up-to-date follower when target is "" (leader only); a target
	// that is not a member is cluster.ErrNotMember.
	TransferLeadership(target string) error
	// Backup writes a consistent, self-checking backup (leader only).
	Backup(ctx context.Context, w io.Writer) (uint64, error)
	// LockCount is the number of locks held in the applied state.
	LockCount() int
	// OnApplied installs a hook on every applied command (nil removes).
	OnApplied(fn func(fsm.Result))
}

// ReadyMaxContact bounds readiness: a node is ready while it knows a
// leader, has heard from it within ReadyMaxContact, has caught up with a
// leader since it started, is at most Lag.MaxBehind entries (the stale-read
// bound) behind the commit index it heard of, and is not shutting down.
const ReadyMaxContact = 3 * time.Second

// opsParts is the Server's operations state.
type opsParts struct {
	ops     Ops // nil when the Cluster has none
	metrics *metrics
	closed  atomic.Bool
}

// newOps builds the operations state for c.
func newOps(s *Server, c Cluster) *opsParts {
	p := &opsParts{}
	p.ops, _ = c.(Ops)
	p.metrics = newMetrics(s, p.ops)
	return p
}

// close stops observing the cluster; readiness turns false.
func (p *opsParts) close() {
	p.closed.Store(true)
	p.metrics.close()
}

func (s *Server) opsRoutes() []route {
	rs := []route{
		{method: http.MethodGet, path: "/healthz", auth: authNone, where: anyNode, handle: s.healthz},
		{method: http.MethodGet, path: "/metrics", auth: authNone, where: anyNode, handle: s.serveMetrics},
		{method: http.MethodGet, path: "/readyz", auth: authNone, where: anyNode, handle: s.readyz},
	}
	rs = append(rs, s.uiRoutes()...)
	if s.opsp.ops == nil {
		return rs
	}
	// Both take the admin key, never the lock key: a backup holds every
	// session token (whoever reads it can release any client's lock), and
	// a transfer interrupts every client's writes.
	return append(rs,
		route{method: http.MethodPost, path: "/v1/cluster/leader", auth: authAdmin, handle: s.transferLeader},
		route{method: http.MethodGet, path: "/v1/snapshot", auth: authAdmin, handle: s.snapshot},
	)
}

// healthz serves GET /healthz: 200 while the process serves HTTP at all.
// Liveness probes use it; it never depends on the rest of the cluster, so
// a partition does not get healthy nodes restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node_id": s.selfID})
	return nil
}

// readyResponse answers GET /readyz.
type readyResponse struct {
	Status        string   `json:"status"` // "ready" or "not_ready"
	NodeID        string   `json:"node_id"`
	LeaderID      string   `json:"leader_id"`
	IsLeader      bool     `json:"is_leader"`
	LastContact   float64  `json:"last_contact"`
	EntriesBehind uint64   `json:"entries_behind"`
	Reasons       []string `json:"reasons,omitempty"`
}

// readyz serves GET /readyz: 200 when this node can serve current state
// (see ReadyMaxContact), 503 with the reasons otherwise. Readiness probes
// and load balancers use it.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) error {
	lag := s.cluster.Lag()
	out := readyResponse{Status: "ready", NodeID: s.selfID, LeaderID: lag.LeaderID, IsLeader: lag.IsLeader,
		EntriesBehind: lag.EntriesBehind}
	if lag.Contacted {
		out.LastContact = lag.SinceContact.Seconds()
	}
	if lag.LeaderID == "" {
		out.Reasons = append(out.Reasons, "no leader is known")
	}
	if !lag.IsLeader && (!lag.Contacted || lag.SinceContact > ReadyMaxContact) {
		out.Reasons = append(out.Reasons, fmt.Sprintf("no contact with the leader for more than %v", ReadyMaxContact))
	}
	if !lag.CaughtUp {
		out.Reasons = append(out.Reasons, "not caught up with a leader since it started")
	}
	if lag.EntriesBehind > lag.MaxBehind {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d committed entries not applied yet (bound %d)", lag.EntriesBehind, lag.MaxBehind))
	}
	if lag.ShuttingDown || s.opsp.closed.Load() {
		out.Reasons = append(out.Reasons, "shutting down")
	}
	status := http.StatusOK
	if len(out.Reasons) > 0 {
		out.Status, status = "not_ready", http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
	return nil
}

// transferBody is the optional body of POST /v1/cluster/leader.
type transferBody struct {
	// Target is the node to hand leadership to; empty lets Raft pick the
	// most up-to-date follower.
	Target string `json:"target"`
}

// transferLeader serves POST /v1/cluster/leader on the leader (followers
// redirect): it hands leadership over and answers once it moved.
func (s *Server) transferLeader(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var body transferBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := checkText("target", body.Target, maxNodeIDLength); err != nil {
		return err
	}
	from := s.selfID
	if err := s.opsp.ops.TransferLeadership(body.Target); err != nil {
		return err
	}
	li := s.cluster.Leader()
	s.log.Info("leadership transfer requested", "from", from, "target", body.Target, "leader_now", li.ID)
	writeJSON(w, http.StatusOK, map[string]any{"previous_leader": from, "leader_id": li.ID})
	return nil
}

// snapshot serves GET /v1/snapshot on the leader: a consistent backup,
// streamed, ending in its own SHA-256 (see cluster.Backup). A failure after
// the first byte aborts the connection, so the client's copy is truncated
// and fails its checksum rather than looking complete.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProposeTimeout)
	defer cancel()
	sw := &startedWriter{w: w}
	idx, err := s.opsp.ops.Backup(ctx, sw)
	if err != nil {
		if sw.started {
			s.log.Warn("backup failed mid-stream", "error", err)
			panic(http.ErrAbortHandler)
		}
		return err
	}
	s.log.Info("backup served", "applied_index", idx)
	return nil
}

// startedWriter sets the download headers before the first byte.
type startedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	if !sw.started {
		sw.started = true
		h := sw.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="doubledutch.backup"`)
		sw.w.WriteHeader(http.StatusOK)
	}
	return sw.w.Write(p)
}

// opsView is what GET /v1/cluster adds for operators and the status page.
type opsView struct {
	// Nodes is the configuration with each member's role and lag; only
	// the leader measures its followers (known false elsewhere).
	Nodes []peerView `json:"nodes,omitempty"`
	// LeaderChanges are the recent leader changes this node saw, oldest
	// first; LeaderChangesTotal counts all since it started.
	LeaderChanges      []leaderChangeView `json:"leader_changes,omitempty"`
	LeaderChangesTotal uint64             `json:"leader_changes_total"`
	// LockCount is the number of locks held in this node's applied state.
	LockCount int `json:"lock_count"`
}

func (s *Server) opsView() opsView {
	if s.opsp.ops == nil {
		return opsView{}
	}
	changes, total := s.opsp.ops.LeaderChanges()
	return opsView{Nodes: viewOfPeers(s.opsp.ops.Peers()), LeaderChanges: viewOfLeaderChanges(changes),
		LeaderChangesTotal: total, LockCount: s.opsp.ops.LockCount()}
}

// waitersTotal and waitersFor are the operations code's only reads of the
// waiting layer (metrics, the lock listing), kept here so that moving that
// layer changes one place.
func (s *Server) waitersTotal() int { return s.locks.Size() }

func (s *Server) waitersFor(name string) int { return s.locks.Waiters(name) }
