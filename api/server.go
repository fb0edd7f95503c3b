package api

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/cluster/locking"
)

// Server is the HTTP API of one node. It is an http.Handler; cmd mounts it
// on its listeners. Build it with New; end it with Close.
type Server struct {
	cfg     Config
	cluster Cluster
	log     hclog.Logger
	selfID  string

	router  *httprouter.Router
	methods []string // every method some route uses, for 405 answers
	locks   *locking.Service
	opsp    *opsParts // metrics, readiness and operations (ops.go)

	closeOnce sync.Once
	// leaderChanged wakes requests waiting for a leader; leaderWaiters
	// counts them; unsubLeader stops following leadership events.
	leaderChanged leaderSignal
	leaderWaiters atomic.Int32
	unsubLeader   func()
	// httpSrv is the server HTTPServer built, whose idle connections
	// Listener sheds at its connection cap.
	httpSrv atomic.Pointer[http.Server]
}

// New builds the API of one node on top of c. log may be nil (no logging).
// New returns an error only for an unusable Config. It subscribes to c's
// events at once (for handing freed locks to waiters); call Close to
// unsubscribe and end the waiting requests.
func New(cfg Config, c Cluster, log hclog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:     cfg,
		cluster: c,
		log:     log,
		selfID:  c.State().NodeID,
		router:  httprouter.New(),
	}
	s.locks = locking.New(c, locking.Config{MaxWaiters: cfg.MaxWaiters, MaxWaitersPerName: cfg.MaxWaitersPerName,
		ProposeTimeout: cfg.ProposeTimeout, OnAbandoned: s.noteAbandoned}, log.Named("locking"))
	s.opsp = newOps(s, c)
	for _, rt := range s.routes() {
		s.register(rt)
	}
	s.unsubLeader = c.Subscribe(s.onLeaderEvent)
	return s, nil
}

// Close ends every waiting request with a retryable 503 and stops
// following cluster events. Call it before http.Server.Shutdown, which
// would otherwise wait for the waiters. Requests after Close that need to
// wait get 503 too; others are still served.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.unsubLeader()
		s.opsp.close()
		s.locks.Close()
	})
}

// routes lists every endpoint; each resource contributes its own.
func (s *Server) routes() []route {
	var rs []route
	rs = append(rs, s.legacyRoutes()...)
	rs = append(rs, s.lockRoutes()...)
	rs = append(rs, s.clusterRoutes()...)
	rs = append(rs, s.memberRoutes()...)
	rs = append(rs, s.opsRoutes()...)
	return rs
}

// ServeHTTP logs the request, recovers panics into a 500 JSON answer,
// refuses over-long URLs and dispatches through the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(w, r, func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.checkURL(r); err != nil {
			s.writeError(w, r, shapeOf(r.URL.Path), err)
			return
		}
		s.dispatch(w, r)
	})
}

// dispatch routes on the escaped path, so that a lock name may contain any
// byte, "/" included, as one percent-encoded path segment. It never
// answers with a 301 (httprouter's path fixing is not used).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		s.writeError(w, r, shapeV1, newError(ErrNotFound, "no such endpoint"))
		return
	}
	if h, ps, _ := s.router.Lookup(r.Method, path); h != nil {
		h(w, r, ps)
		return
	}
	var allow []string
	for _, m := range s.methods {
		if h, _, _ := s.router.Lookup(m, path); h != nil {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, shapeV1, newError(ErrMethodNotAllowed, "method %s not allowed here; use %s", r.Method, strings.Join(allow, ", ")))
		return
	}
	s.writeError(w, r, shapeV1, newError(ErrNotFound, "no such endpoint"))
}
