package api

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/api/codes"
	"github.com/doubledutch/doubledutch/fsm"
)

// The original DoubleDutch endpoints, kept working for existing clients.
// Where the original misbehaved this keeps the user's expectation instead:
// fractional timeouts are honoured; negative, NaN, infinite or unparsable
// numbers and empty names get a 400 JSON error; /status never lists
// session tokens ("sessiontoken" is always "") but adds "fencingtoken".

// shape says which extra fields an error answer carries, so that an old
// client reading "lockacquired" or "lockreleased" finds them on errors too.
type shape int

const (
	shapeV1          shape = iota // {"error":{...}} only
	shapeStatus                   // + servername
	shapeGetLock                  // + servername, lockname, sessiontoken "", lockacquired false
	shapeReleaseLock              // + servername, lockname, lockreleased false
)

// shapeOf is the error shape of a path, for answers given before routing.
func shapeOf(path string) shape {
	switch path {
	case "/getlock":
		return shapeGetLock
	case "/releaselock":
		return shapeReleaseLock
	case "/status":
		return shapeStatus
	}
	return shapeV1
}

// decorate adds the legacy fields of the route's shape to an error body.
func (sh shape) decorate(b *errorBody, r *http.Request, serverName string) {
	if sh == shapeV1 {
		return
	}
	b.ServerName = serverName
	if sh == shapeStatus {
		return
	}
	// The name is echoed clipped: an over-long one must not come back
	// whole in every error.
	name, _ := rawQueryValue(r.URL.RawQuery, "lockname")
	name = clip(name)
	b.LockName = &name
	no, empty := false, ""
	if sh == shapeGetLock {
		b.SessionToken, b.LockAcquired = &empty, &no
	} else {
		b.LockReleased = &no
	}
}

// status adjusts the table's status where the original differs: it
// answers a failed release with 400, not 409.
func (sh shape) status(status int, code codes.Code) int {
	if sh == shapeReleaseLock && code == codes.NotHeld {
		return http.StatusBadRequest
	}
	return status
}

func (s *Server) legacyRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/getlock", auth: authRequired, shape: shapeGetLock, handle: s.getLock},
		{method: http.MethodDelete, path: "/releaselock", auth: authOptional, shape: shapeReleaseLock, handle: s.releaseLock},
		{method: http.MethodGet, path: "/status", auth: authRequired, shape: shapeStatus, handle: s.status},
	}
}

// getLockResponse is the original's answer, plus "fencingtoken" on grant.
type getLockResponse struct {
	ServerName   string `json:"servername"`
	LockName     string `json:"lockname"`
	SessionToken string `json:"sessiontoken"`
	LockAcquired bool   `json:"lockacquired"`
	FencingToken uint64 `json:"fencingtoken,omitempty"`
}

// getLock serves GET /getlock?auth&lockname[&timeout][&lifetime]. Not
// getting the lock within the timeout is a 200 with lockacquired false.
func (s *Server) getLock(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	p, err := s.parseGetLock(r.URL.RawQuery)
	if err != nil {
		return err
	}
	res, err := s.acquire(r.Context(), p)
	if err != nil {
		return err
	}
	if err := refusal(res, p.RequestID); err != nil && res.Outcome != fsm.Ended {
		return err // a repeat of an ended grant is simply "not acquired"
	}
	out := getLockResponse{ServerName: s.cfg.ServerName, LockName: p.Name}
	if res.Outcome == fsm.Granted {
		out.SessionToken = res.Lock.Token.String()
		out.LockAcquired = true
		out.FencingToken = res.Lock.Fence
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseGetLock validates the /getlock query.
func (s *Server) parseGetLock(raw string) (acquireParams, error) {
	q, err := parseQuery(raw, "lockname", "timeout", "lifetime", "request_id")
	if err != nil {
		return acquireParams{}, err
	}
	p := acquireParams{Name: q.Get("lockname"), Lifetime: s.cfg.DefaultLifetime, RequestID: q.Get("request_id")}
	if err := s.cfg.checkName(p.Name); err != nil {
		return p, err
	}
	if err := checkRequestID(p.RequestID); err != nil {
		return p, err
	}
	if sec, ok, err := optSeconds(q, "lifetime"); err != nil {
		return p, err
	} else if ok {
		if p.Lifetime, err = s.cfg.lifetime("lifetime", sec); err != nil {
			return p, err
		}
	}
	if sec, ok, err := optSeconds(q, "timeout"); err != nil {
		return p, err
	} else if ok {
		if p.Wait, err = s.cfg.wait("timeout", sec); err != nil {
			return p, err
		}
	}
	return p, nil
}

// releaseLockResponse is the original's answer.
type releaseLockResponse struct {
	ServerName   string `json:"servername"`
	LockName     string `json:"lockname"`
	LockReleased bool   `json:"lockreleased"`
}

// releaseLock serves DELETE /releaselock?lockname&token[&auth]. auth is
// optional (the token proves ownership), but a wrong one is a 401.
func (s *Server) releaseLock(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	name, tok, reqID, err := s.parseReleaseLock(r.URL.RawQuery)
	if err != nil {
		return err
	}
	res, err := s.locks.Release(r.Context(), name, tok, reqID)
	if err != nil {
		return err
	}
	if err := refusal(res, reqID); err != nil {
		return err
	}
	if res.Outcome != fsm.Released {
		return newError(ErrNotHeld, "the name/token pair does not hold the lock (it may have expired)")
	}
	writeJSON(w, http.StatusOK, releaseLockResponse{ServerName: s.cfg.ServerName, LockName: name, LockReleased: true})
	return nil
}

func (s *Server) parseReleaseLock(raw string) (string, fsm.Token, string, error) {
	q, err := parseQuery(raw, "lockname", "token", "request_id")
	if err != nil {
		return "", fsm.Token{}, "", err
	}
	name, reqID := q.Get("lockname"), q.Get("request_id")
	if err := s.cfg.checkName(name); err != nil {
		return "", fsm.Token{}, "", err
	}
	text, ok := q["token"]
	if !ok || text[0] == "" {
		return "", fsm.Token{}, "", badRequest("token is missing")
	}
	tok, err := fsm.ParseToken(text[0])
	if err != nil {
		return "", fsm.Token{}, "", badRequest("token must be the 32 hexadecimal characters /getlock returned")
	}
	return name, tok, reqID, checkRequestID(reqID)
}

// remaining is the time left until deadline in seconds, never negative
// (a lock past its deadline is gone once its expiry is applied).
func remaining(deadline, now int64) float64 {
	return float64(max(deadline-now, 0)) / 1000
}
