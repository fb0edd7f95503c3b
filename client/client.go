// Package client is a Go client for the DoubleDutch v1 API.
//
// It follows leader redirects, fails over between the endpoints it is
// given, and makes every mutating call idempotent with a request id, so it
// can retry an answer of unknown outcome without acting twice. It owns no
// lock state of its own: what it returns is what the cluster answered.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
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
)

// APIError is an error answer of the server.
type APIError struct {
	Status  int
	Code    string
	Message string
}

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

// retryable says whether a call may be repeated: the cluster was
// unavailable, the outcome is unknown (safe with the same request id), or
// the attempt failed in transport or timed out while the caller still
// waits.
func retryable(ctx context.Context, err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownOutcome)
	}
	return err != nil && ctx.Err() == nil
}

// Client talks to a cluster. It is safe for concurrent use.
type Client struct {
	endpoints []string
	key       string
	http      *http.Client
	// leader is the base URL a follower last redirected to; calls start
	// there, saving a redirect per call.
	leader atomic.Pointer[string]
	// Retry bounds how long a call keeps retrying retryable failures,
	// within the caller's context. Zero: no retries.
	Retry time.Duration
	// AttemptTimeout bounds one attempt (plus the wait of an acquire), so
	// that a node that hangs (stopped, cut off) costs one attempt, not the
	// whole call. Zero: no bound but the caller's context.
	AttemptTimeout time.Duration
}

// New returns a client for the given node URLs (any node: followers
// redirect to the leader). tlsConf may be nil.
func New(endpoints []string, apiKey string, tlsConf *tls.Config) *Client {
	eps := make([]string, len(endpoints))
	for i, e := range endpoints {
		eps[i] = strings.TrimRight(e, "/")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 256
	hc := &http.Client{
		Transport: tr,
		// Redirects are followed in do, which keeps the Authorization
		// header that net/http drops when the leader has another hostname.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{endpoints: eps, key: apiKey, http: hc, Retry: 10 * time.Second, AttemptTimeout: 5 * time.Second}
}

// Lock is a granted lock.
type Lock struct {
	Name         string        `json:"name"`
	Owner        string        `json:"owner,omitempty"`
	SessionToken string        `json:"session_token,omitempty"`
	FencingToken uint64        `json:"fencing_token"`
	Lifetime     time.Duration `json:"-"`
	ExpiresIn    time.Duration `json:"-"`
	Waiters      int           `json:"waiters"`
}

type lockJSON struct {
	Lock
	LifetimeS  float64 `json:"lifetime"`
	ExpiresInS float64 `json:"expires_in"`
}

func (l lockJSON) lock() *Lock {
	out := l.Lock
	out.Lifetime = seconds(l.LifetimeS)
	out.ExpiresIn = seconds(l.ExpiresInS)
	return &out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// AcquireOptions tune an acquire. Zero values take the server defaults.
type AcquireOptions struct {
	Lifetime  time.Duration
	Wait      time.Duration
	Owner     string
	RequestID string // generated when empty
}

// Acquire takes a lock, waiting up to opts.Wait for it. ErrBusy when it
// stays held.
func (c *Client) Acquire(ctx context.Context, name string, opts AcquireOptions) (*Lock, error) {
	body := map[string]any{"request_id": requestID(opts.RequestID)}
	if opts.Lifetime > 0 {
		body["lifetime"] = opts.Lifetime.Seconds()
	}
	if opts.Wait > 0 {
		body["wait"] = opts.Wait.Seconds()
	}
	if opts.Owner != "" {
		body["owner"] = opts.Owner
	}
	var out lockJSON
	if err := c.call(ctx, http.MethodPost, lockPath(name), body, &out, opts.Wait); err != nil {
		return nil, err
	}
	return out.lock(), nil
}

// Release gives a lock back. ErrNotHeld when the token does not hold it.
func (c *Client) Release(ctx context.Context, name, token, reqID string) error {
	body := map[string]any{"token": token, "request_id": requestID(reqID)}
	return c.call(ctx, http.MethodDelete, lockPath(name), body, nil, 0)
}

// Refresh extends a held lock to lifetime from now.
func (c *Client) Refresh(ctx context.Context, name, token string, lifetime time.Duration, reqID string) (*Lock, error) {
	body := map[string]any{"token": token, "request_id": requestID(reqID), "lifetime": lifetime.Seconds()}
	var out lockJSON
	if err := c.call(ctx, http.MethodPost, lockPath(name)+"/refresh", body, &out, 0); err != nil {
		return nil, err
	}
	return out.lock(), nil
}

// Get reads a lock linearizably. ErrNotFound when it is free.
func (c *Client) Get(ctx context.Context, name string) (*Lock, error) {
	var out lockJSON
	if err := c.call(ctx, http.MethodGet, lockPath(name), nil, &out, 0); err != nil {
		return nil, err
	}
	return out.lock(), nil
}

// Cluster returns the raw /v1/cluster document of the first node that
// answers.
func (c *Client) Cluster(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	err := c.call(ctx, http.MethodGet, "/v1/cluster", nil, &out, 0)
	return out, err
}

func lockPath(name string) string { return "/v1/locks/" + url.PathEscape(name) }

// requestID returns id, or a fresh random one: every mutating call carries
// one, so retrying it can never act twice.
func requestID(id string) string {
	if id != "" {
		return id
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// call sends one request, retrying retryable failures on the next
// endpoint until c.Retry has passed or ctx ends. The body (and so the
// request id) is the same on every try. wait is how long the server may
// legitimately hold the request (an acquire's wait).
func (c *Client) call(ctx context.Context, method, path string, body any, out any, wait time.Duration) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(c.Retry)
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ep := c.endpoints[attempt%len(c.endpoints)]
		leader := c.leader.Load()
		if leader != nil {
			ep = *leader
		}
		err := c.attempt(ctx, method, ep+path, payload, out, wait)
		if err == nil || !retryable(ctx, err) {
			return err
		}
		// The remembered leader failed: forget it, so the next attempt
		// asks the endpoints, which redirect to whoever leads now.
		if leader != nil {
			c.leader.CompareAndSwap(leader, nil)
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// attempt is one try, bounded by AttemptTimeout plus the server's wait.
func (c *Client) attempt(ctx context.Context, method, u string, payload []byte, out any, wait time.Duration) error {
	if c.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.AttemptTimeout+wait)
		defer cancel()
	}
	return c.do(ctx, method, u, payload, out)
}

// maxRedirects bounds a chain of leader redirects (leadership may move
// while a request chases it).
const maxRedirects = 5

func (c *Client) do(ctx context.Context, method, u string, payload []byte, out any) error {
	for i := 0; ; i++ {
		resp, err := c.send(ctx, method, u, payload)
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusTemporaryRedirect || loc == "" || i == maxRedirects {
			return readAnswer(resp, out)
		}
		resp.Body.Close()
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return err
		}
		base := next.Scheme + "://" + next.Host
		c.leader.Store(&base)
		u = next.String()
	}
}

func (c *Client) send(ctx context.Context, method, u string, payload []byte) (*http.Response, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
}

func readAnswer(resp *http.Response, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

func decodeError(status int, data []byte) error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) != nil || env.Error.Code == "" {
		return &APIError{Status: status, Code: "http_" + fmt.Sprint(status), Message: strings.TrimSpace(string(data))}
	}
	return &APIError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
}
