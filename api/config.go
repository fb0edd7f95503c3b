package api

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultLifetime          = 30 * time.Second    // the original's default lifetime
	DefaultMaxLifetime       = 30 * 24 * time.Hour // the original's tests use two weeks
	DefaultMaxWait           = 10 * time.Minute
	DefaultMaxWaiters        = 100_000
	DefaultMaxWaitersPerName = 10_000
	DefaultMaxNameLength     = 256
	DefaultMaxOwnerLength    = 256
	DefaultMaxBodyBytes      = 64 << 10
	DefaultProposeTimeout    = 10 * time.Second
	DefaultRetryAfter        = time.Second
	DefaultLeaderWait        = 5 * time.Second
	DefaultBodyTimeout       = 10 * time.Second // a 64 KiB body needs only 6.5 KB/s
	DefaultHeaderTimeout     = 10 * time.Second
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultListLimit         = 100  // GET /v1/locks page size without limit=
	MaxListLimit             = 1000 // the largest limit= accepted
	// MaxRequestIDLength bounds client request ids.
	MaxRequestIDLength = 128
	// MinRequestIDLength is the shortest request id accepted: a repeated
	// id is answered with the first answer, session token included, so an
	// id must be unguessable.
	MinRequestIDLength = 16
)

// Config configures a Server. The zero value of every field but APIKey
// means "use the default".
type Config struct {
	// ServerName is reported as "servername" by the legacy endpoints and
	// in the Server header. Default "DoubleDutch/" + Version, or
	// "DoubleDutch" without a Version.
	ServerName string
	// Version is the release of the binary (cmd passes its build stamp);
	// it only names the default ServerName.
	Version string
	// APIKey is the shared secret clients present as the auth query
	// parameter (legacy endpoints) or as "Authorization: Bearer KEY". The
	// original always requires a key, and so does New: an empty key is
	// an error unless InsecureNoAuth is set.
	APIKey string
	// AdminKey is the bearer key of the admin endpoints (membership
	// changes, leadership transfer, backup). It must differ from APIKey: a
	// lock client must not be able to add a voter of its own, nor read
	// other clients' session tokens from a backup. Empty: admin endpoints answer 403
	// admin_disabled.
	AdminKey string
	// InsecureNoAuth disables key checks entirely. Only for tests and
	// local experiments; never the default.
	InsecureNoAuth bool
	// DefaultLifetime is the lifetime of a lock when the request names
	// none (30 s, as in the original).
	DefaultLifetime time.Duration
	// MaxLifetime bounds a requested lifetime (default 30 days).
	MaxLifetime time.Duration
	// MaxWait bounds how long one request may wait for a lock (default 10
	// minutes). Longer requests get 400 bad_request.
	MaxWait time.Duration
	// MaxWaiters bounds the waiting requests at this node across all
	// names; past it a request gets 429 too_many_waiters.
	MaxWaiters int
	// MaxWaitersPerName bounds the waiting requests for one name.
	MaxWaitersPerName int
	// MaxNameLength bounds a lock name in bytes (default 256).
	MaxNameLength int
	// MaxOwnerLength bounds the optional owner label in bytes.
	MaxOwnerLength int
	// MaxBodyBytes bounds a request body (default 64 KiB); larger bodies
	// get 413 too_large.
	MaxBodyBytes int64
	// ProposeTimeout bounds one proposal. A proposal still in flight then
	// has an unknown outcome (504 unknown_outcome).
	ProposeTimeout time.Duration
	// RetryAfter is the Retry-After hint sent with 429 and 503 answers.
	RetryAfter time.Duration
	// LeaderWait bounds how long a request that needs the leader waits
	// for one while none is known (an election, a leader starting or just
	// lost) before it gets 503 no_leader. Default 5 s. It applies also to
	// acquires with no lock wait, and is charged against a lock wait.
	LeaderWait time.Duration
	// BodyTimeout bounds reading a request body once its headers are in
	// (default 10 s); a slower body gets 408 body_timeout and the
	// connection is closed. It does not bound waiting for a lock.
	BodyTimeout time.Duration
	// HeaderTimeout bounds reading a request's headers (default 10 s).
	HeaderTimeout time.Duration
	// WriteTimeout bounds writing one answer, from its first byte
	// (default 1 min), so a client that stops reading cannot hold a
	// response, and its memory, open. It does not bound waiting.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxConnections caps the client connections served at once (0: no
	// cap). Listener applies it; connections past it wait in the
	// kernel's accept queue, so the process never runs out of file
	// descriptors (Raft and its files need some too). Every waiting
	// lock request holds one connection.
	MaxConnections int
}

// errNoAPIKey is returned by New for a Config without a key.
var errNoAPIKey = errors.New("api: an API key is required (set Config.APIKey, or InsecureNoAuth for tests)")

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.APIKey == "" && !c.InsecureNoAuth {
		return c, errNoAPIKey
	}
	if c.AdminKey != "" && c.AdminKey == c.APIKey {
		return c, errors.New("api: the admin key must differ from the API key")
	}
	if c.ServerName == "" {
		c.ServerName = "DoubleDutch"
		if c.Version != "" {
			c.ServerName += "/" + c.Version
		}
	}
	setDur(&c.DefaultLifetime, DefaultLifetime)
	setDur(&c.MaxLifetime, DefaultMaxLifetime)
	setDur(&c.MaxWait, DefaultMaxWait)
	setDur(&c.ProposeTimeout, DefaultProposeTimeout)
	setDur(&c.RetryAfter, DefaultRetryAfter)
	setDur(&c.LeaderWait, DefaultLeaderWait)
	setDur(&c.BodyTimeout, DefaultBodyTimeout)
	setDur(&c.HeaderTimeout, DefaultHeaderTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setInt(&c.MaxWaiters, DefaultMaxWaiters)
	setInt(&c.MaxWaitersPerName, DefaultMaxWaitersPerName)
	setInt(&c.MaxNameLength, DefaultMaxNameLength)
	setInt(&c.MaxOwnerLength, DefaultMaxOwnerLength)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DefaultLifetime > c.MaxLifetime {
		return c, fmt.Errorf("api: default lifetime %v exceeds the maximum %v", c.DefaultLifetime, c.MaxLifetime)
	}
	if c.MaxWaitersPerName > c.MaxWaiters {
		c.MaxWaitersPerName = c.MaxWaiters
	}
	return c, nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}
