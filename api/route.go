package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/julienschmidt/httprouter"
)

// handlerFunc is a small endpoint handler. It writes its success answer
// itself and returns any failure, which the route wrapper answers through
// the error table in the route's shape.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// authMode says how a route checks the API key.
type authMode int

const (
	authRequired authMode = iota // key required (query auth= or bearer)
	authBearer                   // key required, bearer header only (v1)
	authOptional                 // checked only when given (legacy release)
	authNone                     // health checks
	authAdmin                    // the admin key, bearer only (membership, transfer, backup)
)

// where says which node may answer a route.
type where int

const (
	leaderOnly where = iota // followers redirect to the leader
	anyNode                 // every node answers itself
	staleOK                 // leader, or any node when ?stale=true
)

// route is one endpoint.
type route struct {
	method string
	path   string
	auth   authMode
	where  where
	shape  shape
	handle handlerFunc
}

// takesBody reports whether the route reads a request body: the v1
// routes that change something. Any other route's body is never read (nor
// buffered); the answer ends it (see recorder).
func (rt route) takesBody() bool {
	return rt.shape == shapeV1 && rt.method != http.MethodGet
}

// register adds rt to the router behind auth, the body read (see
// preloadBody) and the leader check.
func (s *Server) register(rt route) {
	if !slices.Contains(s.methods, rt.method) {
		s.methods = append(s.methods, rt.method)
	}
	rt.handle = s.countLockOp(rt)
	s.router.Handle(rt.method, rt.path, s.timeRoute(rt, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := s.authorize(r, rt.auth); err != nil {
			s.writeError(w, r, rt.shape, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), startKey{}, time.Now()))
		if rt.takesBody() {
			if err := s.preloadBody(w, r); err != nil {
				s.writeError(w, r, rt.shape, err)
				return
			}
		}
		if s.mustRedirect(r, rt.where) {
			var here bool
			if r, here = s.reachLeader(w, r, rt.shape); !here {
				return
			}
		}
		if err := rt.handle(w, r, ps); err != nil {
			s.fail(w, r, rt.shape, err)
		}
	}))
}

// fail answers a handler's error. A request that lost its leader on the
// way is carried to the next one when that is safe (carryAcross).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sh shape, err error) {
	if s.carryAcross(w, r, sh, err) {
		return
	}
	s.writeError(w, r, sh, err)
}

// pathName is the unescaped lock name in the :name path segment.
func pathName(ps httprouter.Params) (string, error) {
	name, err := url.PathUnescape(ps.ByName("name"))
	if err != nil {
		return "", badRequest("lock name in the path is not valid percent-encoding")
	}
	return name, nil
}
