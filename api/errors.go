package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/doubledutch/doubledutch/api/codes"
	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/cluster/locking"
)

// Sentinel errors of the HTTP layer. Handlers wrap them with a message
// (see fail); errorTable maps each, and the cluster's sentinels, to one
// status and one stable code. Clients match on the code, never the message.
var (
	// ErrBadRequest: the request is malformed or out of bounds (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: the API key is missing or wrong (401).
	ErrUnauthorized = errors.New("missing or wrong API key")
	// ErrAdminDisabled: an admin endpoint on a node without an admin
	// key (403).
	ErrAdminDisabled = errors.New("admin endpoints are disabled")
	// ErrNotFound: no such endpoint, or the lock is free (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed: the path exists for other methods (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrBusy: someone else holds the lock (409).
	ErrBusy = errors.New("the lock is held by someone else")
	// ErrNotHeld: the name/token pair holds nothing (409; 400 legacy).
	ErrNotHeld = errors.New("the name/token pair does not hold the lock")
	// ErrTooLarge: the request body is over the limit (413).
	ErrTooLarge = errors.New("request body too large")
	// ErrURITooLong: the path and query are longer than any valid
	// request's (414).
	ErrURITooLong = errors.New("request URL too long")
	// ErrSlowBody: the request body did not arrive in time (408).
	ErrSlowBody = errors.New("request body not received in time")
	// ErrTooManyWaiters: the waiting bound is reached (429).
	ErrTooManyWaiters = locking.ErrTooManyWaiters
	// ErrTooManyLocks: the cluster holds fsm.MaxLocks locks (429).
	ErrTooManyLocks = errors.New("too many locks are held")
	// ErrTooManyIDs: the dedup table is full; new request ids are refused
	// until ids expire (429).
	ErrTooManyIDs = errors.New("too many request ids are remembered")
	// ErrGrantEnded: a repeated request id whose grant has ended (409).
	ErrGrantEnded = errors.New("the grant of this request id has ended")
	// ErrNoLeader: no leader is known or ready (503).
	ErrNoLeader = errors.New("no leader is known; retry shortly")
	// ErrLeaderChanged: leadership moved while the request waited (503).
	ErrLeaderChanged = locking.ErrLeaderChanged
	// ErrClientGone: the client disconnected; nobody reads the answer.
	ErrClientGone = locking.ErrClientGone
)

// errorEntry is one row of the error table.
type errorEntry struct {
	err    error
	status int
	code   codes.Code
}

// errorTable is the one place an error becomes a status and a code. Order
// matters only where an error matches several rows: the first wins.
// unknown_outcome has a status of its own (504): the command may have been
// applied, so it is neither a success nor a plain failure, and retrying is
// safe only with the same request id.
var errorTable = []errorEntry{
	// First: an error that may have been applied must never look like
	// one that certainly was not.
	{cluster.ErrUnknownOutcome, http.StatusGatewayTimeout, codes.UnknownOutcome},
	{ErrBadRequest, http.StatusBadRequest, codes.BadRequest},
	{ErrUnauthorized, http.StatusUnauthorized, codes.Unauthorized},
	{ErrAdminDisabled, http.StatusForbidden, codes.AdminDisabled},
	{ErrNotFound, http.StatusNotFound, codes.NotFound},
	{cluster.ErrNotMember, http.StatusNotFound, codes.NotFound},
	{cluster.ErrQuorumAtRisk, http.StatusConflict, codes.QuorumAtRisk},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, codes.MethodNotAllowed},
	{ErrBusy, http.StatusConflict, codes.Busy},
	{ErrNotHeld, http.StatusConflict, codes.NotHeld},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, codes.TooLarge},
	{ErrSlowBody, http.StatusRequestTimeout, codes.BodyTimeout},
	{ErrURITooLong, http.StatusRequestURITooLong, codes.URITooLong},
	{ErrGrantEnded, http.StatusConflict, codes.GrantEnded},
	{ErrTooManyWaiters, http.StatusTooManyRequests, codes.TooManyWaiters},
	{ErrTooManyLocks, http.StatusTooManyRequests, codes.TooManyLocks},
	{ErrTooManyIDs, http.StatusTooManyRequests, codes.TooManyRequestIDs},
	{ErrNoLeader, http.StatusServiceUnavailable, codes.NoLeader},
	// Before ErrNotLeader: a waiter's leader_changed also matches it.
	{ErrLeaderChanged, http.StatusServiceUnavailable, codes.LeaderChanged},
	{cluster.ErrNotLeader, http.StatusServiceUnavailable, codes.NoLeader},
	{cluster.ErrNotApplied, http.StatusServiceUnavailable, codes.Unavailable},
	{cluster.ErrTooStale, http.StatusServiceUnavailable, codes.TooStale},
	{cluster.ErrShutdown, http.StatusServiceUnavailable, codes.Unavailable},
	// Nobody reads this answer; the row keeps request logs truthful.
	{ErrClientGone, 499, codes.ClientGone},
	{context.Canceled, 499, codes.ClientGone},
}

// classify looks err up in the error table; anything unknown is a 500.
func classify(err error) (status int, code codes.Code) {
	e := lookup(err)
	return e.status, e.code
}

// internalEntry answers an error the table does not know: a bug.
var internalEntry = errorEntry{status: http.StatusInternalServerError, code: codes.Internal}

func lookup(err error) errorEntry {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e
		}
	}
	return internalEntry
}

// serverMessages are the public messages of server-side failures (5xx),
// by code. A cluster error may carry a raw cause such as "write
// /data/raft.db: no space left on device"; that goes to the log only.
var serverMessages = map[codes.Code]string{
	codes.Internal:       "internal error",
	codes.UnknownOutcome: "the command may or may not have been applied; retry with the same request id",
	codes.NoLeader:       "no leader is known; retry shortly",
	codes.LeaderChanged:  "leadership changed while waiting; retry",
	codes.Unavailable:    "the command was not applied; retry shortly",
}

// publicMessage is what a client reads about err. Client errors (4xx)
// say what was wrong with the request. A server-side failure (5xx) shows
// its own text only when api wrote it (an *apiError, not wrapped), and
// otherwise the short message of its code: never a raw cause.
func publicMessage(err error, e errorEntry) string {
	if e.status < 500 {
		return err.Error()
	}
	if ae, ok := err.(*apiError); ok && e.status != http.StatusInternalServerError {
		return ae.msg
	}
	if msg, ok := serverMessages[e.code]; ok {
		return msg
	}
	return "the server could not serve the request (" + string(e.code) + ")"
}

// apiError carries a sentinel (for the table) and a message for the client.
type apiError struct {
	kind error
	msg  string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.kind }

// newError wraps a sentinel with a formatted message.
func newError(kind error, format string, args ...any) error {
	return &apiError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return newError(ErrBadRequest, format, args...)
}

// errorDetail is the body of every error: {"error":{"code","message"}}.
type errorDetail struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
	Lock    *lockView  `json:"lock,omitempty"`
}

// errorBody is the one error shape. The legacy fields are filled only on
// the original endpoints, so that old clients reading "lockacquired" or
// "lockreleased" still find them (false) on an error.
type errorBody struct {
	ServerName   string      `json:"servername,omitempty"`
	LockName     *string     `json:"lockname,omitempty"`
	SessionToken *string     `json:"sessiontoken,omitempty"`
	LockAcquired *bool       `json:"lockacquired,omitempty"`
	LockReleased *bool       `json:"lockreleased,omitempty"`
	Error        errorDetail `json:"error"`
}

// busyError is ErrBusy with the holder's public details.
type busyError struct {
	apiError
	lock *lockView
}

// writeJSON writes v with status. Errors writing are the client's loss.
func writeJSON(w http.ResponseWriter, status int, v any) {
	setJSONHeaders(w)
	w.WriteHeader(status)
	if a, ok := v.(jsonAppender); ok {
		_, _ = w.Write(a.appendJSON(make([]byte, 0, 256)))
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// setJSONHeaders marks an answer as JSON that no cache keeps.
func setJSONHeaders(w http.ResponseWriter) {
	h := w.Header()
	// Assigned in canonical form from shared values: no allocation per
	// answer. net/http only reads them, and an Add would copy (cap 1).
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
}

var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// writeError answers err through the error table in the route's shape.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, shape shape, err error) {
	e := lookup(err)
	status, code := shape.status(e.status, e.code), e.code
	msg := publicMessage(err, e)
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", r.Method, "path", clipN(r.URL.EscapedPath(), maxLoggedValue), "error", err)
	case status >= 500 && msg != err.Error():
		// The cause stays in the log; 503s are routine while leadership
		// moves, so only the unknown outcome is a warning.
		level := s.log.Debug
		if status == http.StatusGatewayTimeout {
			level = s.log.Warn
		}
		level("request not served", "method", r.Method, "path", clipN(r.URL.EscapedPath(), maxLoggedValue), "code", code, "error", err)
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(s.cfg.RetryAfter)))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="doubledutch"`)
	}
	body := errorBody{Error: errorDetail{Code: code, Message: msg}}
	var be *busyError
	if errors.As(err, &be) {
		body.Error.Lock = be.lock
	}
	shape.decorate(&body, r, s.cfg.ServerName)
	writeJSON(w, status, body)
}

func retryAfterSeconds(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	if n < 1 {
		n = 1
	}
	return n
}
