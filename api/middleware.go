package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
)

// recorder remembers the status a handler wrote, for the request log and
// so that a panic after the header went out does not write a second one.
// When the answer starts it sets the connection's write deadline: a
// client that stops reading cannot hold the answer (and its memory) open
// for longer than writeTimeout, however long the request waited before.
//
// It also ends a body nobody read. net/http reads (drains) an unread
// request body before it writes the answer, and again when the handler
// returns; from a client that stalls inside its body that waits forever.
// So an answer to a request whose body was not read (a 401, a redirect, a
// 404) first sets the read deadline to now: what is already buffered is
// still drained and the connection reused, a stalled body fails at once
// and net/http closes the connection after the answer.
type recorder struct {
	http.ResponseWriter
	status       int
	writeTimeout time.Duration
	unreadBody   bool
}

func (rw *recorder) start(code int) {
	if rw.status == 0 {
		rw.status = code
		rc := http.NewResponseController(rw.ResponseWriter)
		if rw.unreadBody {
			_ = rc.SetReadDeadline(time.Now())
		}
		_ = rc.SetWriteDeadline(time.Now().Add(rw.writeTimeout))
	}
}

func (rw *recorder) WriteHeader(code int) {
	rw.start(code)
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	rw.start(http.StatusOK)
	return rw.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// observe runs next with panic recovery and one log line per request.
// Requests log at debug level (a lock service may serve thousands a
// second); server errors at error level. The query string is redacted:
// it may carry the API key (auth=) or a session token (token=).
func (s *Server) observe(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout, unreadBody: hasBody(r)}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // net/http's own way to abort a response
			}
			s.log.Error("panic serving request", "method", r.Method, "path", clipN(r.URL.EscapedPath(), maxLoggedValue),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rw.status == 0 {
				s.writeError(rw, r, shapeV1, errors.New("panic"))
			}
		}
		level := s.log.Debug
		if rw.status >= 500 && rw.status != http.StatusServiceUnavailable && rw.status != http.StatusGatewayTimeout {
			level = s.log.Error
		} else if !s.log.IsDebug() {
			return // the line's fields are not even built: this runs per request
		}
		level("request", "method", r.Method, "path", clipN(r.URL.EscapedPath(), maxLoggedValue), "query", redactQuery(r.URL.RawQuery),
			"status", rw.status, "duration", time.Since(start), "remote", r.RemoteAddr)
	}()
	next(rw, r)
}

// knownParams are the query parameters some endpoint reads. The name of
// any other parameter may itself be a secret (a client that sent "?KEY",
// or "?auth%3DKEY" with the '=' encoded), so it is not logged at all.
var knownParams = map[string]bool{
	"lockname": true, "timeout": true, "lifetime": true, "prefix": true, "after": true,
	"limit": true, "stale": true, "digest": true, "force": true, "wait": true,
	"auth": true, "token": true, "request_id": true,
}

// loggedParams are the known parameters whose values are safe to log.
// Every other value (auth, token, request_id) is replaced by "REDACTED".
var loggedParams = map[string]bool{
	"lockname": true, "timeout": true, "lifetime": true, "prefix": true, "after": true,
	"limit": true, "stale": true, "digest": true, "force": true, "wait": true,
}

// redactQuery keeps known parameter names and only the safe values. It
// splits on ';' as well as '&': the query parser refuses ';', but the log
// line is written whatever the parser thinks of the query.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range parts {
		k, v, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		switch {
		case err != nil || !knownParams[name]:
			parts[i] = "REDACTED"
		case hasValue && !loggedParams[name]:
			parts[i] = k + "=REDACTED"
		case hasValue:
			parts[i] = k + "=" + clipN(v, maxLoggedValue)
		}
	}
	return strings.Join(parts, "&")
}

// maxLoggedValue bounds a query value or path in the request log.
const maxLoggedValue = 512

// authorize checks the key the route's mode asks for. Both forms are
// compared in constant time, of equal-length digests so that not even the
// key's length leaks.
func (s *Server) authorize(r *http.Request, mode authMode) error {
	if mode == authNone || s.cfg.InsecureNoAuth {
		return nil
	}
	want := s.cfg.APIKey
	if mode == authAdmin {
		if s.cfg.AdminKey == "" {
			return newError(ErrAdminDisabled, "admin endpoints are disabled on this node: start it with an admin key (--admin-key-file)")
		}
		want = s.cfg.AdminKey
	}
	given, err := presentedKeys(r, mode)
	if err != nil {
		return err
	}
	if len(given) == 0 {
		return missingKey(mode)
	}
	wantSum := sha256.Sum256([]byte(want))
	for _, k := range given {
		got := sha256.Sum256([]byte(k))
		if subtle.ConstantTimeCompare(got[:], wantSum[:]) != 1 {
			if mode == authAdmin {
				return newError(ErrUnauthorized, "wrong admin key")
			}
			return newError(ErrUnauthorized, "wrong API key")
		}
	}
	return nil
}

// presentedKeys collects the keys r carries in the forms mode accepts.
func presentedKeys(r *http.Request, mode authMode) ([]string, error) {
	var given []string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, newError(ErrUnauthorized, "Authorization must be \"Bearer KEY\"")
		}
		given = append(given, strings.TrimSpace(key))
	}
	if mode != authBearer && mode != authAdmin {
		if q, ok := rawQueryValue(r.URL.RawQuery, "auth"); ok {
			given = append(given, q)
		}
	}
	return given, nil
}

// redirectHint is added to a missing bearer key's 401: the usual cause is
// a client that followed a redirect to the leader on another port or host
// and, rightly, did not resend the Authorization header.
const redirectHint = "; if this request followed a redirect to the leader, the client dropped the header " +
	"(curl -L does: use --location-trusted, or send the request to the leader)"

// missingKey is the 401 for a request without a key, or nil when the
// route does not need one.
func missingKey(mode authMode) error {
	switch mode {
	case authOptional:
		return nil
	case authBearer:
		return newError(ErrUnauthorized, "missing API key: send \"Authorization: Bearer KEY\"%s", redirectHint)
	case authAdmin:
		return newError(ErrUnauthorized, "missing admin key: send \"Authorization: Bearer ADMIN_KEY\"%s", redirectHint)
	}
	return newError(ErrUnauthorized, "missing API key: pass auth=KEY or \"Authorization: Bearer KEY\"")
}

// rawQueryValue returns the first value of key, tolerating a query that
// does not parse as a whole (validation reports that later, after auth).
func rawQueryValue(raw, key string) (string, bool) {
	for _, p := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(p, "=")
		if kk, err := url.QueryUnescape(k); err != nil || kk != key {
			continue
		}
		vv, err := url.QueryUnescape(v)
		if err != nil {
			return v, true
		}
		return vv, true
	}
	return "", false
}

// isStale reports whether the client asked for a stale read.
func isStale(r *http.Request) bool {
	v, ok := rawQueryValue(r.URL.RawQuery, "stale")
	return ok && (v == "" || v == "true" || v == "1")
}
