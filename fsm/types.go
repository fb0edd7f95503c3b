package fsm

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
)

// Token is a session token: 128 bits the leader draws from crypto/rand
// before proposing an acquire. Holding it proves ownership of a grant.
type Token [16]byte

// ErrBadToken is returned by ParseToken for text that is not 32 hex digits.
var ErrBadToken = errors.New("session token must be 32 hexadecimal characters")

// String renders the token as 32 lower-case hex characters, the length the
// original DoubleDutch used for its tokens.
func (t Token) String() string { return hex.EncodeToString(t[:]) }

// IsZero reports whether the token is unset.
func (t Token) IsZero() bool { return t == Token{} }

// Equal compares two tokens in constant time.
func (t Token) Equal(o Token) bool { return subtle.ConstantTimeCompare(t[:], o[:]) == 1 }

// ParseToken reads the text form written by String.
func ParseToken(s string) (Token, error) {
	var t Token
	if len(s) != 2*len(t) {
		return t, ErrBadToken
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return Token{}, ErrBadToken
	}
	return t, nil
}

// Lock is one held lock. Values are immutable once stored: a refresh
// stores a new Lock, so a snapshot taken earlier never sees a change.
type Lock struct {
	Name  string
	Token Token
	Owner string
	// Fence is the fencing token of the grant: the larger of the granting
	// entry's Raft index and the previous grant's fence plus one. It
	// increases strictly with every grant of every lock, also across
	// packed entries (several grants in one entry get consecutive fences),
	// snapshots and restarts, and equals the index whenever an entry
	// carries one grant, as every entry did before packing.
	Fence uint64
	// GrantedAt is the stamp of the granting entry (cluster ms).
	GrantedAt int64
	// Lifetime is the lifetime of the latest grant or refresh (ms).
	Lifetime int64
	// Deadline is the stamp of the latest grant or refresh plus its
	// lifetime (cluster ms). The lock is freed by the first command whose
	// applied clock reaches it.
	Deadline int64
}

// Outcome says what Apply did with a command.
type Outcome uint8

// Outcomes of Apply. Refusals (Busy, NotHeld) are outcomes, not errors: a
// Raft failure never looks like one.
const (
	Granted   Outcome = 1 // acquire: the caller holds the lock
	Busy      Outcome = 2 // acquire: someone else holds it
	NotHeld   Outcome = 3 // release/refresh: the name/token pair holds nothing
	Released  Outcome = 4 // release: the lock is free
	Refreshed Outcome = 5 // refresh: the deadline moved
	Ticked    Outcome = 6 // tick: the clock moved, due locks expired
	Announced Outcome = 7 // announce: the node's API URL is recorded
	// Ended answers a repeated acquire whose first grant has ended since
	// (released or expired): the repeat does not act again. Lock.Fence is
	// the first grant's fence.
	Ended Outcome = 8
	// TooManyLocks refuses an acquire of a free lock while MaxLocks locks
	// are held.
	TooManyLocks Outcome = 9
	// TooManyIDs refuses a command with a new request id while the dedup
	// table holds MaxDedup live ids: a live id is never forgotten early.
	TooManyIDs Outcome = 10
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Granted:
		return "granted"
	case Busy:
		return "busy"
	case NotHeld:
		return "not_held"
	case Released:
		return "released"
	case Refreshed:
		return "refreshed"
	case Ticked:
		return "ticked"
	case Announced:
		return "announced"
	case Ended:
		return "ended"
	case TooManyLocks:
		return "too_many_locks"
	case TooManyIDs:
		return "too_many_request_ids"
	}
	return "unknown"
}

// Result is the typed answer of Apply.
type Result struct {
	Outcome Outcome
	// Index is the log index of the entry that produced this result. For a
	// duplicate it is the index of the first answer. Commands packed into
	// one entry share its index.
	Index uint64
	// Lock is the granted or refreshed lock, or for Busy the current holder
	// (whose Token the caller must not be shown).
	Lock Lock
	// Now is the applied lease clock after this entry (cluster ms).
	Now int64
	// Duplicate is true when a repeated request id was answered from the
	// dedup table instead of acting again.
	Duplicate bool
	// Freed lists the names this entry freed, by release or expiry, in the
	// order they were freed. Observers use it to hand locks to waiters.
	Freed []string
}

// Results is what Apply returns for a packed entry: one Result per
// command, in the entry's order.
type Results []Result
