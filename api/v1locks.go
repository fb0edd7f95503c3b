package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/fsm"
)

// The v1 lock resource. Every route needs "Authorization: Bearer KEY".

func (s *Server) lockRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/v1/locks/:name", auth: authBearer, handle: s.acquireLock},
		{method: http.MethodDelete, path: "/v1/locks/:name", auth: authBearer, handle: s.releaseLockV1},
		{method: http.MethodPost, path: "/v1/locks/:name/refresh", auth: authBearer, handle: s.refreshLock},
		{method: http.MethodGet, path: "/v1/locks/:name", auth: authBearer, where: staleOK, handle: s.readLock},
		{method: http.MethodGet, path: "/v1/locks", auth: authBearer, where: staleOK, handle: s.listLocks},
	}
}

// Headers that may carry what a body carries, for clients that cannot
// send a body with DELETE.
const (
	headerToken     = "X-Session-Token"
	headerRequestID = "Idempotency-Key"
	headerStaleness = "X-Doubledutch-Staleness"
)

// acquireBody is the body of POST /v1/locks/:name. All fields optional.
type acquireBody struct {
	Lifetime  *float64 `json:"lifetime"`   // seconds; default 30
	Wait      *float64 `json:"wait"`       // seconds; default 0
	Owner     string   `json:"owner"`      // label shown to readers
	RequestID string   `json:"request_id"` // makes a retry safe
}

// tokenFields are the body fields of release and refresh that prove
// ownership and make a retry safe.
type tokenFields struct {
	Token     string `json:"token"`      // or the X-Session-Token header
	RequestID string `json:"request_id"` // or the Idempotency-Key header
}

// releaseBody is the body of DELETE /v1/locks/:name.
type releaseBody struct {
	tokenFields
}

// refreshBody is the body of POST /v1/locks/:name/refresh.
type refreshBody struct {
	tokenFields
	Lifetime *float64 `json:"lifetime"` // seconds; default 30
}

// lockView is a lock as v1 shows it: never its session token.
type lockView struct {
	Name         string  `json:"name"`
	Owner        string  `json:"owner,omitempty"`
	FencingToken uint64  `json:"fencing_token"`
	Lifetime     float64 `json:"lifetime"`
	ExpiresIn    float64 `json:"expires_in"`
}

func viewOf(l fsm.Lock, now int64) lockView {
	return lockView{Name: l.Name, Owner: l.Owner, FencingToken: l.Fence,
		Lifetime: float64(l.Lifetime) / 1000, ExpiresIn: remaining(l.Deadline, now)}
}

// grantResponse answers a successful acquire.
type grantResponse struct {
	lockView
	SessionToken string `json:"session_token"`
	Duplicate    bool   `json:"duplicate,omitempty"`
}

// acquireLock serves POST /v1/locks/:name: 200 with the grant, 409 busy
// when not granted within the wait.
func (s *Server) acquireLock(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var body acquireBody
	p, err := s.parseAcquire(w, r, ps, &body)
	if err != nil {
		return err
	}
	res, err := s.acquire(r.Context(), p)
	if err != nil {
		return err
	}
	if err := refusal(res, p.RequestID); err != nil {
		return err
	}
	if res.Outcome != fsm.Granted {
		return busy(res, p.Wait)
	}
	writeJSON(w, http.StatusOK, grantResponse{lockView: viewOf(res.Lock, res.Now),
		SessionToken: res.Lock.Token.String(), Duplicate: res.Duplicate})
	return nil
}

func (s *Server) parseAcquire(w http.ResponseWriter, r *http.Request, ps httprouter.Params, body *acquireBody) (acquireParams, error) {
	name, err := pathName(ps)
	if err != nil {
		return acquireParams{}, err
	}
	if err := s.decodeBody(w, r, body); err != nil {
		return acquireParams{}, err
	}
	p := acquireParams{Name: name, Owner: body.Owner, Lifetime: s.cfg.DefaultLifetime}
	if p.RequestID, err = requestID(r, body.RequestID); err != nil {
		return p, err
	}
	if sec, ok, err := queryWait(r, "wait"); err != nil {
		return p, err
	} else if ok {
		body.Wait = &sec
	}
	if err := s.cfg.checkName(name); err != nil {
		return p, err
	}
	if err := s.cfg.checkOwner(p.Owner); err != nil {
		return p, err
	}
	if body.Lifetime != nil {
		if p.Lifetime, err = s.cfg.lifetime("lifetime", *body.Lifetime); err != nil {
			return p, err
		}
	}
	if body.Wait != nil {
		if p.Wait, err = s.cfg.wait("wait", *body.Wait); err != nil {
			return p, err
		}
	}
	return p, nil
}

// busy is the 409 for a request not granted; it names the holder's public
// details when known.
func busy(res fsm.Result, waited time.Duration) error {
	msg := "the lock is held by someone else"
	if waited > 0 {
		msg += "; waited " + waited.String()
	}
	be := &busyError{apiError: apiError{kind: ErrBusy, msg: msg}}
	if res.Lock.Name != "" {
		v := viewOf(res.Lock, res.Now)
		be.lock = &v
	}
	return be
}

// releasedResponse answers a successful release.
type releasedResponse struct {
	Name         string `json:"name"`
	Released     bool   `json:"released"`
	FencingToken uint64 `json:"fencing_token"`
}

// releaseLockV1 serves DELETE /v1/locks/:name: 200, or 409 not_held.
func (s *Server) releaseLockV1(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var body releaseBody
	name, tok, reqID, err := s.parseTokenRequest(w, r, ps, &body, &body.tokenFields)
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
	writeJSON(w, http.StatusOK, releasedResponse{Name: name, Released: true, FencingToken: res.Lock.Fence})
	return nil
}

// refreshLock serves POST /v1/locks/:name/refresh: 200 with the new
// expiry, or 409 not_held.
func (s *Server) refreshLock(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var body refreshBody
	name, tok, reqID, err := s.parseTokenRequest(w, r, ps, &body, &body.tokenFields)
	if err != nil {
		return err
	}
	lifetime := s.cfg.DefaultLifetime
	if body.Lifetime != nil {
		if lifetime, err = s.cfg.lifetime("lifetime", *body.Lifetime); err != nil {
			return err
		}
	}
	res, err := s.locks.Refresh(r.Context(), name, tok, lifetime, reqID)
	if err != nil {
		return err
	}
	if err := refusal(res, reqID); err != nil {
		return err
	}
	if res.Outcome != fsm.Refreshed {
		return newError(ErrNotHeld, "the name/token pair does not hold the lock (it may have expired)")
	}
	writeJSON(w, http.StatusOK, viewOf(res.Lock, res.Now))
	return nil
}

// parseTokenRequest decodes body (which embeds tf) and validates the name,
// the token and the request id.
func (s *Server) parseTokenRequest(w http.ResponseWriter, r *http.Request, ps httprouter.Params,
	body any, tf *tokenFields) (string, fsm.Token, string, error) {
	name, err := pathName(ps)
	if err != nil {
		return "", fsm.Token{}, "", err
	}
	if err := s.decodeBody(w, r, body); err != nil {
		return "", fsm.Token{}, "", err
	}
	if err := s.cfg.checkName(name); err != nil {
		return "", fsm.Token{}, "", err
	}
	text, err := eitherOf("token", tf.Token, r.Header.Get(headerToken))
	if err != nil {
		return "", fsm.Token{}, "", err
	}
	if text == "" {
		return "", fsm.Token{}, "", badRequest("token is missing: send it in the body or the %s header", headerToken)
	}
	tok, err := fsm.ParseToken(text)
	if err != nil {
		return "", fsm.Token{}, "", badRequest("token must be the 32 hexadecimal characters the acquire returned")
	}
	reqID, err := requestID(r, tf.RequestID)
	return name, tok, reqID, err
}

// requestID takes the client request id from the body or the
// Idempotency-Key header, else from the query's request_id (which a
// redirect across a leader change carries), and validates it.
func requestID(r *http.Request, fromBody string) (string, error) {
	id, err := eitherOf("request_id", fromBody, r.Header.Get(headerRequestID))
	if err != nil {
		return "", err
	}
	if id == "" {
		if id, err = queryRequestID(r.URL.RawQuery); err != nil {
			return "", err
		}
	}
	return id, checkRequestID(id)
}

// queryRequestID reads the optional request_id of a query string.
func queryRequestID(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	q, err := parseQuery(raw, "request_id")
	if err != nil {
		return "", err
	}
	return q.Get("request_id"), nil
}

// queryWait reads an optional wait from the query string (seconds); a
// redirect across a leader change carries the wait that remains, and it
// overrides the body's.
func queryWait(r *http.Request, key string) (float64, bool, error) {
	if r.URL.RawQuery == "" {
		return 0, false, nil
	}
	q, err := parseQuery(r.URL.RawQuery, key)
	if err != nil {
		return 0, false, err
	}
	return optSeconds(q, key)
}

// eitherOf returns whichever of a body field and a header is given; both
// given and different is a bad request.
func eitherOf(what, body, header string) (string, error) {
	if body != "" && header != "" && body != header {
		return "", badRequest("%s differs between the body and the header", what)
	}
	if body != "" {
		return body, nil
	}
	return header, nil
}

// lockInfo answers GET /v1/locks/:name.
type lockInfo struct {
	lockView
	// Waiters is the number of requests waiting for the lock at this
	// node (the leader; 0 on a stale read from a follower).
	Waiters int `json:"waiters"`
	staleFields
}

// readLock serves GET /v1/locks/:name: 200, or 404 not_found when free.
// Linearizable at the leader; with ?stale=true any node answers from
// local state and says how stale it may be.
func (s *Server) readLock(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	name, err := pathName(ps)
	if err != nil {
		return err
	}
	if err := s.cfg.checkName(name); err != nil {
		return err
	}
	var (
		lock  fsm.Lock
		held  bool
		now   int64
		stale staleFields
	)
	if isStale(r) {
		if stale, err = s.checkStale(w); err != nil {
			return err
		}
		lock, held, now, _ = s.cluster.StaleReadLock(name)
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProposeTimeout)
		defer cancel()
		if lock, held, now, err = s.cluster.ReadLock(ctx, name); err != nil {
			return err
		}
	}
	if !held {
		return newError(ErrNotFound, "lock %q is not held", clip(name))
	}
	writeJSON(w, http.StatusOK, lockInfo{lockView: viewOf(lock, now), Waiters: s.locks.Waiters(name), staleFields: stale})
	return nil
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
