package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// LockInfo describes a held lock as the cluster reported it.
type LockInfo struct {
	Name         string        `json:"name"`
	Owner        string        `json:"owner,omitempty"`
	FencingToken uint64        `json:"fencing_token"`
	Lifetime     time.Duration `json:"-"` // of the latest grant or refresh
	ExpiresIn    time.Duration `json:"-"` // left when the leader answered
	Waiters      int           `json:"waiters"`
	expirySet    bool          // the answer carried expires_in (possibly 0)
}

// lockJSON is the wire form of a lock answer (times in seconds).
type lockJSON struct {
	LockInfo
	SessionToken string   `json:"session_token,omitempty"`
	Duplicate    bool     `json:"duplicate,omitempty"`
	LifetimeS    float64  `json:"lifetime"`
	ExpiresInS   *float64 `json:"expires_in"`
}

func (l lockJSON) info() *LockInfo {
	out := l.LockInfo
	out.Lifetime = seconds(l.LifetimeS)
	if l.ExpiresInS != nil {
		out.ExpiresIn, out.expirySet = seconds(*l.ExpiresInS), true
	}
	return &out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func lockPath(name string) string { return "/v1/locks/" + url.PathEscape(name) }

// NewRequestID returns 128 random bits in hex: request ids must be
// unguessable, since a repeat of one is answered with the first answer.
func NewRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orNewID(id string) string {
	if id != "" {
		return id
	}
	return NewRequestID()
}

// Release gives a lock back by its session token. reqID may be empty (one
// is drawn). ErrNotHeld when the token does not hold the lock.
func (c *Client) Release(ctx context.Context, name, token, reqID string) error {
	reqID = orNewID(reqID)
	body := map[string]any{"token": token, "request_id": reqID}
	return c.call(ctx, request{method: http.MethodDelete, path: lockPath(name), mutating: true, requestID: reqID,
		body: func(time.Duration) any { return body }})
}

// Refresh extends a held lock to lifetime from when the leader handles
// it (never earlier than it was). reqID may be empty (one is drawn).
// Prefer Lock.Refresh, which also moves the handle's deadline.
func (c *Client) Refresh(ctx context.Context, name, token string, lifetime time.Duration, reqID string) (*LockInfo, error) {
	return c.refresh(ctx, name, token, lifetime, reqID, 0)
}

func (c *Client) refresh(ctx context.Context, name, token string, lifetime time.Duration, reqID string, attemptTimeout time.Duration) (*LockInfo, error) {
	reqID = orNewID(reqID)
	body := map[string]any{"token": token, "request_id": reqID}
	if lifetime > 0 {
		body["lifetime"] = lifetime.Seconds()
	}
	var out lockJSON
	err := c.call(ctx, request{method: http.MethodPost, path: lockPath(name) + "/refresh", out: &out, mutating: true,
		requestID: reqID, attemptTimeout: attemptTimeout, body: func(time.Duration) any { return body }})
	if err != nil {
		return nil, err
	}
	return out.info(), nil
}

// Get reads a lock linearizably. ErrNotFound when it is free.
func (c *Client) Get(ctx context.Context, name string) (*LockInfo, error) {
	var out lockJSON
	if err := c.call(ctx, request{method: http.MethodGet, path: lockPath(name), out: &out}); err != nil {
		return nil, err
	}
	return out.info(), nil
}

// LockPage is one page of List.
type LockPage struct {
	Locks []LockInfo
	Next  string // cursor for the next page; "" on the last
}

// List reads one page of held locks in name order: names starting with
// prefix, after the cursor after, at most limit (0: the server's default).
func (c *Client) List(ctx context.Context, prefix, after string, limit int) (*LockPage, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/locks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Locks []lockJSON `json:"locks"`
		Next  string     `json:"next"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: path, out: &out}); err != nil {
		return nil, err
	}
	page := &LockPage{Next: out.Next, Locks: make([]LockInfo, len(out.Locks))}
	for i, l := range out.Locks {
		page.Locks[i] = *l.info()
	}
	return page, nil
}

// Cluster returns the raw /v1/cluster document of the first node that
// answers.
func (c *Client) Cluster(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/cluster", out: &out, anyNode: true})
	return out, err
}

// NodeStatus is one configured node's own view of the cluster.
type NodeStatus struct {
	Endpoint string
	Status   map[string]any // the node's /v1/cluster document; nil on error
	Err      error
}

// Nodes asks every configured endpoint for its own /v1/cluster document,
// concurrently, with one attempt each: it reports the nodes as they are,
// including the unreachable ones.
func (c *Client) Nodes(ctx context.Context) []NodeStatus {
	out := make([]NodeStatus, len(c.endpoints))
	var wg sync.WaitGroup
	for i, ep := range c.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw json.RawMessage
			ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
			defer cancel()
			resp, err := c.send(ctx, http.MethodGet, ep+"/v1/cluster", nil)
			if err == nil {
				err = readAnswer(resp, &raw)
			}
			out[i] = NodeStatus{Endpoint: ep, Err: err}
			if err == nil {
				out[i].Err = json.Unmarshal(raw, &out[i].Status)
			}
		}()
	}
	wg.Wait()
	return out
}
