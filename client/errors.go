package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/api/codes"
)

// Errors returned by the client, matched with errors.Is. An *APIError
// matches the one its code stands for (see sentinels).
var (
	ErrBusy     = errors.New("lock is held by someone else")
	ErrNotHeld  = errors.New("lock is not held with this token")
	ErrNotFound = errors.New("lock is not held")
	// ErrGrantEnded: an acquire repeated with the request id of an
	// earlier grant that has ended since (released or expired); it does
	// not act again.
	ErrGrantEnded   = errors.New("the grant of this request id has ended")
	ErrUnauthorized = errors.New("missing or wrong API key")
	// ErrRefused: the node refuses the operation as configured or in its
	// state (admin endpoints disabled, a membership change that would
	// put the quorum at risk).
	ErrRefused    = errors.New("the node refused the operation")
	ErrBadRequest = errors.New("bad request")
	// ErrUnavailable: the cluster cannot serve the call now and nothing
	// was applied (no leader or quorum, a node too far behind, or a
	// limit on locks, request ids or waiters); retry later.
	ErrUnavailable    = errors.New("cluster unavailable (no leader or no quorum)")
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrRedirectRefused: a node redirected to a URL that is neither one
	// of the configured endpoints nor a member the cluster reports
	// (another host, or http for an https node). The request is not
	// repeated there: it would carry the key.
	ErrRedirectRefused = errors.New("redirect to a node that is not configured")
	// ErrLockLost: the handle can no longer promise that the lock is
	// held (its deadline passed without a refresh, or a refresh was
	// refused). Stop acting under it.
	ErrLockLost = errors.New("lock lost")
	// ErrReleased: the handle was released.
	ErrReleased = errors.New("lock released")
)

// sentinels maps every wire code to the error it matches. What each code
// says about a command's effect (and so whether to retry) is the codes
// package's; this only names it for errors.Is.
var sentinels = map[codes.Code]error{
	codes.Busy:              ErrBusy,
	codes.NotHeld:           ErrNotHeld,
	codes.NotFound:          ErrNotFound,
	codes.GrantEnded:        ErrGrantEnded,
	codes.Unauthorized:      ErrUnauthorized,
	codes.AdminDisabled:     ErrRefused,
	codes.QuorumAtRisk:      ErrRefused,
	codes.BadRequest:        ErrBadRequest,
	codes.TooLarge:          ErrBadRequest,
	codes.URITooLong:        ErrBadRequest,
	codes.MethodNotAllowed:  ErrBadRequest,
	codes.NoLeader:          ErrUnavailable,
	codes.LeaderChanged:     ErrUnavailable,
	codes.Unavailable:       ErrUnavailable,
	codes.TooStale:          ErrUnavailable,
	codes.BodyTimeout:       ErrUnavailable,
	codes.TooManyWaiters:    ErrUnavailable,
	codes.TooManyLocks:      ErrUnavailable,
	codes.TooManyRequestIDs: ErrUnavailable,
	codes.UnknownOutcome:    ErrUnknownOutcome,
	codes.Internal:          ErrUnknownOutcome,
	codes.ClientGone:        ErrUnknownOutcome,
}

// APIError is an error answer of the server.
type APIError struct {
	Status int
	// Code is the answer's wire code, or http_NNN for an answer without
	// a JSON error body.
	Code    codes.Code
	Message string
}

// Error formats the status, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("doubledutch: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is maps the stable error codes to the package's sentinels.
func (e *APIError) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && target == s
}

// class says what the answer tells about the command's effect. A
// redirect answer (the chain of leader redirects ran out) never reached
// a leader, so it certainly had no effect.
func (e *APIError) class() codes.Class {
	if e.Status == http.StatusTemporaryRedirect || e.Status == http.StatusPermanentRedirect {
		return codes.NotApplied
	}
	return codes.Classify(e.Code)
}

// UnknownOutcomeError is returned when a mutating call ran out of retries
// (or its context ended) after an attempt whose outcome is unknown: the
// command may have been applied. Repeat it with the same request id to
// learn the outcome without acting twice.
type UnknownOutcomeError struct {
	RequestID string
	FirstSent time.Time // when the call's first attempt was sent
	Last      error     // the last attempt's error
	Cause     error     // the context's error, when it ended the call
}

// Error says the outcome is unknown and how to learn it.
func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("doubledutch: outcome unknown (retry with request id %s to learn it): last attempt: %v", e.RequestID, e.Last)
}

// Is makes the error match ErrUnknownOutcome.
func (e *UnknownOutcomeError) Is(target error) bool { return target == ErrUnknownOutcome }

// Unwrap returns the context's error when the context ended the call, so
// that errors.Is(err, context.Canceled) holds too.
func (e *UnknownOutcomeError) Unwrap() error { return e.Cause }

// RedirectError is a redirect the client refused to follow.
type RedirectError struct {
	From, To string
}

// Error names both ends of the refused redirect (never the key).
func (e *RedirectError) Error() string {
	return fmt.Sprintf("doubledutch: %s redirected to %s, which is neither a configured endpoint nor a member the cluster reports: list every node by the URL it advertises (the key is never sent elsewhere)", e.From, e.To)
}

// Is makes the error match ErrRedirectRefused.
func (e *RedirectError) Is(target error) bool { return target == ErrRedirectRefused }

// lostError says why a handle was lost.
type lostError struct{ why string }

func (e *lostError) Error() string        { return "doubledutch: lock lost: " + e.why }
func (e *lostError) Is(target error) bool { return target == ErrLockLost }

func decodeError(status int, data []byte) error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.Error.Code == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return &APIError{Status: status, Code: codes.Code(fmt.Sprintf("http_%d", status)), Message: msg}
	}
	return &APIError{Status: status, Code: codes.Code(env.Error.Code), Message: env.Error.Message}
}
