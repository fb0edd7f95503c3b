package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by the client, matched with errors.Is. An *APIError
// matches the one its code stands for.
var (
	ErrBusy           = errors.New("lock is held by someone else")
	ErrNotHeld        = errors.New("lock is not held with this token")
	ErrNotFound       = errors.New("lock is not held")
	ErrUnauthorized   = errors.New("missing or wrong API key")
	ErrBadRequest     = errors.New("bad request")
	ErrUnavailable    = errors.New("cluster unavailable (no leader or no quorum)")
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrRedirectRefused: a node redirected to a URL that is not one of
	// the configured endpoints (another host, or http for an https
	// node). The request is not repeated there: it would carry the key.
	ErrRedirectRefused = errors.New("redirect to a node that is not configured")
	// ErrLockLost: the handle can no longer promise that the lock is
	// held (its deadline passed without a refresh, or a refresh was
	// refused). Stop acting under it.
	ErrLockLost = errors.New("lock lost")
	// ErrReleased: the handle was released.
	ErrReleased = errors.New("lock released")
)

// APIError is an error answer of the server.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error formats the status, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("doubledutch: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is maps the stable error codes to the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch e.Code {
	case "busy":
		return target == ErrBusy
	case "not_held":
		return target == ErrNotHeld
	case "not_found":
		return target == ErrNotFound
	case "unauthorized":
		return target == ErrUnauthorized
	case "bad_request", "too_large":
		return target == ErrBadRequest
	case "no_leader", "leader_changed", "unavailable", "too_many_waiters":
		return target == ErrUnavailable
	case "unknown_outcome":
		return target == ErrUnknownOutcome
	}
	return false
}

// notApplied says whether the answer guarantees the command had no
// effect: the node knew no leader, leadership changed before the
// proposal, the queue was full, or a redirect chain never reached a
// leader.
func (e *APIError) notApplied() bool {
	switch e.Code {
	case "no_leader", "leader_changed", "unavailable", "too_many_waiters", "http_307", "http_308":
		return true
	}
	return false
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
	return fmt.Sprintf("doubledutch: %s redirected to %s, which is not a configured endpoint: list every node by the URL it advertises (the key is never sent elsewhere)", e.From, e.To)
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
		return &APIError{Status: status, Code: fmt.Sprintf("http_%d", status), Message: msg}
	}
	return &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
}
