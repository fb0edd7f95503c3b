// Package codes is the one table of the wire error codes: the "code" of
// every error body {"error":{"code","message"}}. The server (api), the Go
// client and the chaos harness all read it, so that a code means the same
// thing to each of them. It is a leaf package with no dependencies: the
// client imports it without pulling in the server.
package codes

// Code is a stable error code. Clients match on it, never on the message.
type Code string

// The codes the server answers.
const (
	// UnknownOutcome: the command may or may not have been applied (504).
	UnknownOutcome Code = "unknown_outcome"
	// BadRequest: the request is malformed or out of bounds (400).
	BadRequest Code = "bad_request"
	// Unauthorized: the API key is missing or wrong (401).
	Unauthorized Code = "unauthorized"
	// AdminDisabled: an admin endpoint on a node without an admin key (403).
	AdminDisabled Code = "admin_disabled"
	// NotFound: no such endpoint or member, or the lock is free (404).
	NotFound Code = "not_found"
	// QuorumAtRisk: a membership change refused because it would leave
	// the cluster without a quorum (409).
	QuorumAtRisk Code = "quorum_at_risk"
	// MethodNotAllowed: the path exists for other methods (405).
	MethodNotAllowed Code = "method_not_allowed"
	// Busy: someone else holds the lock (409).
	Busy Code = "busy"
	// NotHeld: the name/token pair holds nothing (409; 400 legacy).
	NotHeld Code = "not_held"
	// TooLarge: the request body is over the limit (413).
	TooLarge Code = "too_large"
	// BodyTimeout: the request body did not arrive in time (408).
	BodyTimeout Code = "body_timeout"
	// URITooLong: the path and query are too long (414).
	URITooLong Code = "uri_too_long"
	// GrantEnded: a repeated request id whose grant has ended since (409).
	GrantEnded Code = "grant_ended"
	// TooManyWaiters: the bound on waiting requests is reached (429).
	TooManyWaiters Code = "too_many_waiters"
	// TooManyLocks: the cluster holds the most locks it holds (429).
	TooManyLocks Code = "too_many_locks"
	// TooManyRequestIDs: the dedup table is full until ids expire (429).
	TooManyRequestIDs Code = "too_many_request_ids"
	// NoLeader: no leader is known or ready (503).
	NoLeader Code = "no_leader"
	// LeaderChanged: leadership moved while the request waited (503).
	LeaderChanged Code = "leader_changed"
	// Unavailable: the command was not applied (the node is shutting down,
	// or lost leadership before proposing) (503).
	Unavailable Code = "unavailable"
	// TooStale: a stale read refused by a node too far behind (503).
	TooStale Code = "too_stale"
	// ClientGone: the client disconnected; nobody reads this (499).
	ClientGone Code = "client_gone"
	// Internal: an error the server's table does not know: a bug (500).
	Internal Code = "internal"
)

// Class is what an error answer tells about the command's effect.
type Class uint8

const (
	// Unclassified: not a code of this table (a newer server's, or one a
	// client made up for an answer without a JSON body).
	Unclassified Class = iota
	// Definite: the request was answered (busy, not_held, not_found,
	// grant_ended) or refused for what it is (bad request, wrong key);
	// repeating it unchanged gets the same answer.
	Definite
	// NotApplied: the command certainly had no effect, and the cause is
	// passing (no leader, a limit that frees up, a slow body): retry
	// later or at another node.
	NotApplied
	// OutcomeUnknown: the command may have been applied. Retry only with
	// the same request id, which answers the first outcome without
	// acting twice.
	OutcomeUnknown
)

// classes classifies every code. Why each passing code is passing: the
// 429s refuse a command before it acts (the state machine does not
// remember the refusal under the request id, so a retry may succeed once
// locks or ids expire or waiters leave); a 503 is answered before a
// proposal or for a proposal that certainly failed; a 408 is answered
// before the body was read. Internal and client_gone say nothing about
// the effect, so they are unknown.
var classes = map[Code]Class{
	UnknownOutcome:    OutcomeUnknown,
	Internal:          OutcomeUnknown,
	ClientGone:        OutcomeUnknown,
	BadRequest:        Definite,
	Unauthorized:      Definite,
	AdminDisabled:     Definite,
	NotFound:          Definite,
	QuorumAtRisk:      Definite,
	MethodNotAllowed:  Definite,
	Busy:              Definite,
	NotHeld:           Definite,
	TooLarge:          Definite,
	URITooLong:        Definite,
	GrantEnded:        Definite,
	BodyTimeout:       NotApplied,
	TooManyWaiters:    NotApplied,
	TooManyLocks:      NotApplied,
	TooManyRequestIDs: NotApplied,
	NoLeader:          NotApplied,
	LeaderChanged:     NotApplied,
	Unavailable:       NotApplied,
	TooStale:          NotApplied,
}

// Classify returns c's class; Unclassified for a code not in the table.
func Classify(c Code) Class { return classes[c] }

// Known reports whether c is a code of this table.
func Known(c Code) bool { return classes[c] != Unclassified }

// Retryable reports whether repeating the request may get another
// answer: the command was certainly not applied and the cause passes, or
// its outcome is unknown (then only with the same request id).
func Retryable(c Code) bool {
	cl := classes[c]
	return cl == NotApplied || cl == OutcomeUnknown
}

// All returns every code of the table, for tests that check another
// table against this one.
func All() []Code {
	out := make([]Code, 0, len(classes))
	for c := range classes {
		out = append(out, c)
	}
	return out
}
