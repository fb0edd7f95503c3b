package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A node that was the leader and then hangs (stopped, cut off) must cost
// one attempt, after which the client forgets it and asks the others.
func TestClientLeavesAHungLeader(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"name":"x","fencing_token":7,"lifetime":1,"expires_in":1}`))
	}))
	defer live.Close()

	c := newTestClient(t, Config{Endpoints: []string{live.URL, hung.URL}, APIKey: "k", AttemptTimeout: 200 * time.Millisecond})
	stale := hung.URL
	c.leader.Store(&stale)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := c.Get(ctx, "x")
	if err != nil || l.FencingToken != 7 {
		t.Fatalf("get past a hung leader: %+v %v", l, err)
	}
	if p := c.leader.Load(); p != nil && *p == hung.URL {
		t.Fatal("the hung leader is still remembered")
	}
}

func TestClientErrorsMatchSentinels(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"busy","message":"held"}}`))
	}))
	defer srv.Close()
	c := New([]string{srv.URL}, "k", nil)
	_, err := c.Acquire(context.Background(), "x", AcquireOptions{})
	var apiErr *APIError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("busy answer: %v", err)
	}
}

// keyCatcher is a server that must never be asked anything: it records
// every Authorization header it is sent.
type keyCatcher struct {
	mu   sync.Mutex
	seen []string
}

func (k *keyCatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.seen = append(k.seen, r.Header.Get("Authorization"))
	k.mu.Unlock()
	w.Write([]byte(`{"name":"x","fencing_token":1,"lifetime":30,"expires_in":30,"session_token":"00000000000000000000000000000000"}`))
}

func (k *keyCatcher) requests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.seen...)
}

// A redirect to a host that is not a configured node, or from https to
// http, is refused: the bearer key must never reach it (issue 8).
func TestRedirectOnlyToConfiguredNodes(t *testing.T) {
	rogue := &keyCatcher{}
	plain := httptest.NewServer(rogue)
	defer plain.Close()
	redirectTo := func(target string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", target+r.URL.Path)
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
	}
	other := httptest.NewServer(redirectTo(plain.URL))
	defer other.Close()
	secure := httptest.NewTLSServer(redirectTo(plain.URL))
	defer secure.Close()
	downgrade := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+r.Host+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer downgrade.Close()

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"another host", Config{Endpoints: []string{other.URL}}},
		{"https to another http host", Config{Endpoints: []string{secure.URL}, TLS: secure.Client().Transport.(*http.Transport).TLSClientConfig}},
		{"https to http on the same host", Config{Endpoints: []string{downgrade.URL}, TLS: downgrade.Client().Transport.(*http.Transport).TLSClientConfig}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.APIKey = "secret-key"
			c := newTestClient(t, tc.cfg)
			_, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: time.Second})
			if !errors.Is(err, ErrRedirectRefused) {
				t.Fatalf("acquire through a redirect elsewhere: %v, want ErrRedirectRefused", err)
			}
			if strings.Contains(err.Error(), "secret-key") {
				t.Fatalf("error text carries the key: %v", err)
			}
		})
	}
	if got := rogue.requests(); len(got) != 0 {
		t.Fatalf("the unconfigured host was sent %d requests (Authorization %q)", len(got), got)
	}
}

// A redirect to another configured node is followed, key and body kept.
func TestRedirectToConfiguredNodeIsFollowed(t *testing.T) {
	leader := &keyCatcher{}
	lsrv := httptest.NewServer(leader)
	defer lsrv.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", lsrv.URL+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	c := newTestClient(t, Config{Endpoints: []string{follower.URL, lsrv.URL}, APIKey: "k"})
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{})
	if err != nil || l.Fence() != 1 {
		t.Fatalf("acquire via follower: %v", err)
	}
	if got := leader.requests(); len(got) != 1 || got[0] != "Bearer k" {
		t.Fatalf("leader saw %q", got)
	}
	if p := c.leader.Load(); p == nil || *p != lsrv.URL {
		t.Fatalf("leader not remembered: %v", p)
	}
}

// During an election the cluster answers 503 (not applied): the client
// retries with short jittered backoff and the same request id (issue 10).
func TestNotAppliedIsRetriedWithTheSameRequestID(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			RequestID string `json:"request_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		ids = append(ids, body.RequestID)
		n := len(ids)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"no_leader","message":"electing"}}`))
		case 2:
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":{"code":"unknown_outcome","message":"?"}}`))
		default:
			w.Write([]byte(`{"name":"x","fencing_token":9,"lifetime":30,"expires_in":30,"session_token":"00000000000000000000000000000000","duplicate":true}`))
		}
	}))
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{})
	if err != nil || l.Fence() != 9 {
		t.Fatalf("acquire through 503 and 504: %v", err)
	}
	if len(ids) != 3 || ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("request ids of the attempts: %q, want three equal", ids)
	}
}

// The backoff is short (well under Retry-After's second) and jittered.
func TestBackoffIsShortAndJittered(t *testing.T) {
	seen := map[time.Duration]bool{}
	for attempt := 0; attempt < 12; attempt++ {
		d := backoffBase << min(attempt, 8)
		d = min(d, backoffMax)
		for i := 0; i < 50; i++ {
			j := jitter(attempt)
			if j < d/2 || j >= d {
				t.Fatalf("attempt %d: pause %v outside [%v, %v)", attempt, j, d/2, d)
			}
			seen[j] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct pauses in 600: not jittered", len(seen))
	}
}

// A call that never learns its outcome says so, with the id to repeat.
func TestUnknownOutcomeIsReportedWithItsRequestID(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusGatewayTimeout)
		w.Write([]byte(`{"error":{"code":"unknown_outcome","message":"?"}}`))
	}))
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, RetryFor: 300 * time.Millisecond})
	_, err := c.Acquire(context.Background(), "x", AcquireOptions{RequestID: "rid-1"})
	var uerr *UnknownOutcomeError
	if !errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &uerr) || uerr.RequestID != "rid-1" || uerr.FirstSent.IsZero() {
		t.Fatalf("err = %v, want an UnknownOutcomeError for rid-1", err)
	}
	if calls.Load() < 2 {
		t.Fatalf("%d attempts, want retries", calls.Load())
	}
}

// CAFile makes the client trust exactly the nodes that CA signed.
func TestCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"name":"x","fencing_token":3,"lifetime":1,"expires_in":1}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, CAFile: ca})
	if l, err := c.Get(context.Background(), "x"); err != nil || l.FencingToken != 3 {
		t.Fatalf("get with the CA: %v", err)
	}
	c = newTestClient(t, Config{Endpoints: []string{srv.URL}, MaxAttempts: 1})
	if _, err := c.Get(context.Background(), "x"); err == nil {
		t.Fatal("a node signed by an unknown CA was trusted")
	}
	if _, err := NewClient(Config{Endpoints: []string{srv.URL}, CAFile: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

// A call whose context ends while an attempt may have been applied is
// both of unknown outcome and cancelled.
func TestCancelledCallIsUnknownAndCancelled(t *testing.T) {
	hang, stop := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the hang-up
		hang <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-hang; cancel() }()
	_, err := c.Acquire(ctx, "x", AcquireOptions{Wait: time.Minute})
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
}
