// Package client is a Go client for the DoubleDutch v1 API, built so that
// holding a lock correctly is the easy path.
//
// Acquire returns a *Lock handle whose Deadline is a moment at which the
// cluster cannot yet have expired the lock, whose Lost channel closes when
// that can no longer be promised, and which can keep itself alive. The
// client follows leader redirects only to the cluster's nodes (the API key
// never goes anywhere else), hedges an attempt that hangs by sending it to
// another node too, retries "not applied" answers with short
// jittered backoff, and retries answers of unknown outcome with the same
// request id, which the cluster answers from memory instead of acting twice.
//
// A lease cannot stop a paused process from acting after its lock expired:
// pass the fencing token (Lock.Fence) with every write, and let the
// protected resource refuse stale tokens (package client/fence).
package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Config configures a Client. Only Endpoints is required.
type Config struct {
	// Endpoints are the nodes' API URLs, spelled as the nodes advertise
	// them (GET /v1/cluster lists them; so does `doubledutch cluster`).
	// Calls may go to any of them. A follower's redirect is followed only
	// to one of these (same scheme, host and port) or to a member that
	// one of them reports in GET /v1/cluster (a node added at runtime),
	// never from https to http, so the API key is never sent to a host
	// that is not part of the cluster.
	Endpoints []string
	// APIKey is sent as "Authorization: Bearer KEY".
	APIKey string
	// CAFile is a PEM file of the CAs that sign the nodes' certificates.
	CAFile string
	// TLS is the TLS configuration to use (it is cloned). With CAFile
	// set, the CAs from the file replace its RootCAs.
	TLS *tls.Config
	// AttemptTimeout bounds one attempt, on top of an acquire's wait, so
	// that a node that hangs (stopped, cut off) costs one attempt, not the
	// whole call. Default 5 s.
	AttemptTimeout time.Duration
	// HedgeAfter is how long an attempt may go without response headers
	// (beyond an acquire's wait) before the same request, with the same
	// request id, is also sent to another endpoint; the first definite
	// answer wins and the node that hung is not redirected to again in
	// that call while another endpoint may answer. A frozen node then
	// costs about HedgeAfter instead of AttemptTimeout. Default 1 s;
	// negative disables hedging. Hedges count against MaxAttempts.
	HedgeAfter time.Duration
	// RetryFor bounds how long a call keeps retrying answers that are
	// "not applied" or of unknown outcome (on top of an acquire's wait),
	// within the caller's context. Default 30 s.
	RetryFor time.Duration
	// MaxAttempts bounds the attempts of one call; 0 means no bound but
	// RetryFor, 1 means never retry.
	MaxAttempts int
	// ClockRateError is the largest relative rate difference assumed
	// between this machine's monotonic clock and the leader's: a lock's
	// Deadline is shortened by this fraction of its lifetime. Default
	// 0.01 (1 %, far above the 0.05 % of an NTP-disciplined clock).
	ClockRateError float64
}

// Defaults for Config's zero values.
const (
	DefaultAttemptTimeout = 5 * time.Second
	DefaultHedgeAfter     = time.Second
	DefaultRetryFor       = 30 * time.Second
	DefaultClockRateError = 0.01
)

// Client talks to a cluster. It is safe for concurrent use.
type Client struct {
	cfg       Config
	endpoints []string          // base URLs without a trailing slash
	origins   []string          // origin of each endpoint
	trusted   map[string]string // origin a redirect may lead to -> its endpoint
	members   memberCache       // members' URLs the cluster reported
	http      *http.Client
	// leader is the base URL a follower last redirected to (a configured
	// endpoint or a reported member); calls start there, saving a
	// redirect.
	leader atomic.Pointer[string]
}

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("client: no endpoints")
	}
	cfg = withDefaults(cfg)
	c := &Client{cfg: cfg, trusted: make(map[string]string)}
	for _, e := range cfg.Endpoints {
		u, err := url.Parse(strings.TrimSpace(e))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: endpoint %q is not an http(s) URL", e)
		}
		base := strings.TrimRight(u.String(), "/")
		c.endpoints = append(c.endpoints, base)
		c.origins = append(c.origins, origin(u))
		c.trusted[origin(u)] = base
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 256
	tr.Proxy = nil // the key goes to the nodes, not to an environment proxy
	c.http = &http.Client{
		Transport: tr,
		// Redirects are followed in do, only to the cluster's nodes.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// New returns a client for the given node URLs with the default timeouts.
// tlsConf may be nil. It panics on an endpoint that is not an http(s)
// URL; use NewClient to get an error instead.
func New(endpoints []string, apiKey string, tlsConf *tls.Config) *Client {
	c, err := NewClient(Config{Endpoints: endpoints, APIKey: apiKey, TLS: tlsConf})
	if err != nil {
		panic(err)
	}
	return c
}

func withDefaults(cfg Config) Config {
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.HedgeAfter == 0 {
		cfg.HedgeAfter = DefaultHedgeAfter
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.ClockRateError <= 0 {
		cfg.ClockRateError = DefaultClockRateError
	}
	return cfg
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS != nil {
		conf = cfg.TLS.Clone()
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client: CA file: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: no PEM certificate in %s", cfg.CAFile)
		}
	}
	return conf, nil
}

// origin is scheme://host:port in lower case with the default port made
// explicit, so that two spellings of one node compare equal and an https
// endpoint never matches an http Location.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// Endpoints returns the configured node URLs.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }
