package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// node is a test server that records each request's body and answers
// with its handler (nil: hang until the test ends or the client leaves).
type node struct {
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request)
	done   chan struct{} // closed at the test's end: hung handlers return

	mu     sync.Mutex
	bodies []string
	gone   int // hung requests whose client went away
}

func newNode(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *node {
	t.Helper()
	n := &node{answer: answer, done: make(chan struct{})}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	// Cleanups run last-in first-out: the handlers return before Close
	// waits for them.
	t.Cleanup(n.srv.Close)
	t.Cleanup(func() { close(n.done) })
	return n
}

func (n *node) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n.mu.Lock()
	n.bodies = append(n.bodies, string(body))
	n.mu.Unlock()
	if n.answer != nil {
		n.answer(w, r)
		return
	}
	select {
	case <-n.done:
	case <-r.Context().Done():
		n.mu.Lock()
		n.gone++
		n.mu.Unlock()
	}
}

func (n *node) seen() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.bodies...)
}

func (n *node) left() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gone
}

func grant(w http.ResponseWriter, _ *http.Request) {
	w.Write([]byte(`{"name":"x","fencing_token":5,"lifetime":30,"expires_in":30,"session_token":"00000000000000000000000000000000"}`))
}

func redirectTo(target *node) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target.srv.URL+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An endpoint that accepts the request and never answers (a frozen
// process) costs HedgeAfter, not AttemptTimeout: the same request, with
// the same id and body, goes to the next endpoint, whose answer wins.
func TestHedgeAnswersPastAHungEndpoint(t *testing.T) {
	hung, live := newNode(t, nil), newNode(t, grant)
	const hedgeAfter = 200 * time.Millisecond
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, live.srv.URL}, APIKey: "k",
		AttemptTimeout: 20 * time.Second, HedgeAfter: hedgeAfter})
	start := time.Now()
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: 30 * time.Second})
	took := time.Since(start)
	if err != nil || l.Fence() != 5 {
		t.Fatalf("acquire past a hung endpoint: %v", err)
	}
	if took < hedgeAfter || took > 10*hedgeAfter {
		t.Fatalf("took %v, want about HedgeAfter (%v), far below AttemptTimeout", took, hedgeAfter)
	}
	h, v := hung.seen(), live.seen()
	if len(h) != 1 || len(v) != 1 || h[0] != v[0] {
		t.Fatalf("hung node got %q, live node %q: want the same request once each", h, v)
	}
	if p := c.leader.Load(); p != nil && *p == hung.srv.URL {
		t.Fatal("the hung node is remembered as the leader")
	}
}

// The node whose answer won is where the next call starts: a hung node
// listed first costs one hedge, not one per call.
func TestHedgeWinnerIsWhereTheNextCallStarts(t *testing.T) {
	hung, live := newNode(t, nil), newNode(t, grant)
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, live.srv.URL}, APIKey: "k",
		AttemptTimeout: 20 * time.Second, HedgeAfter: 100 * time.Millisecond})
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(hung.seen()); n != 1 {
		t.Fatalf("the hung node was asked %d times, want once", n)
	}
	if p := c.leader.Load(); p == nil || *p != live.srv.URL {
		t.Fatalf("remembered leader %v, want the node that answered", p)
	}
}

// A hedge that reaches a follower which still redirects to the hung node
// does not follow it there while another endpoint may answer: it asks
// the next one, and the hung node is sent the request once.
func TestHedgeDoesNotFollowARedirectBackToTheHungNode(t *testing.T) {
	hung := newNode(t, nil)
	follower, live := newNode(t, redirectTo(hung)), newNode(t, grant)
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, follower.srv.URL, live.srv.URL}, APIKey: "k",
		AttemptTimeout: 20 * time.Second, HedgeAfter: 100 * time.Millisecond})
	start := time.Now()
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{})
	if err != nil || l.Fence() != 5 {
		t.Fatalf("acquire: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	if n := len(hung.seen()); n != 1 {
		t.Fatalf("the hung node was sent %d requests, want 1 (the redirect back was followed)", n)
	}
	if len(follower.seen()) == 0 {
		t.Fatal("the hedge did not go to the follower")
	}
	ids := append(append(hung.seen(), follower.seen()...), live.seen()...)
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("bodies differ across the attempts: %q", ids)
		}
	}
}

// An acquire that asked the server to wait is not hedged during its wait:
// a waiting request legitimately has no answer yet.
func TestHedgeWaitsOutTheLockWait(t *testing.T) {
	const wait = 500 * time.Millisecond
	slow := newNode(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait) // the server holding the request in the lock's queue
		grant(w, r)
	})
	other := newNode(t, grant)
	// Hedged at HedgeAfter, as if the wait did not count, the request
	// would reach the other node 100 ms before the answer.
	c := newTestClient(t, Config{Endpoints: []string{slow.srv.URL, other.srv.URL}, HedgeAfter: 400 * time.Millisecond})
	if _, err := c.Acquire(context.Background(), "x", AcquireOptions{Wait: wait}); err != nil {
		t.Fatal(err)
	}
	if n := len(other.seen()); n != 0 {
		t.Fatalf("a waiting acquire was hedged (%d requests to the other node)", n)
	}
}

// Every attempt hung: the outcome is unknown, and says which id to repeat.
func TestHedgeAllHungIsUnknown(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	c := newTestClient(t, Config{Endpoints: []string{a.srv.URL, b.srv.URL}, AttemptTimeout: 300 * time.Millisecond,
		HedgeAfter: 50 * time.Millisecond, RetryFor: 200 * time.Millisecond})
	_, err := c.Acquire(context.Background(), "x", AcquireOptions{RequestID: "rid-hedged-000001"})
	var uerr *UnknownOutcomeError
	if !errors.As(err, &uerr) || uerr.RequestID != "rid-hedged-000001" {
		t.Fatalf("err = %v, want an unknown outcome for the id", err)
	}
	if len(a.seen()) == 0 || len(b.seen()) == 0 {
		t.Fatalf("attempts: %d and %d, want both nodes asked", len(a.seen()), len(b.seen()))
	}
}

// A definite refusal from the hedge is the answer, as it would be from a
// retry, and the hung attempt is abandoned (its client goes away, so a
// grant it might still make is given back by the server).
func TestHedgeRefusalWinsAndCancelsTheHungAttempt(t *testing.T) {
	hung := newNode(t, nil)
	busy := newNode(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"busy","message":"held"}}`))
	})
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, busy.srv.URL}, AttemptTimeout: 20 * time.Second,
		HedgeAfter: 50 * time.Millisecond})
	if _, err := c.Acquire(context.Background(), "x", AcquireOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	waitUntil(t, 5*time.Second, "the hung attempt's cancellation", func() bool { return hung.left() == 1 })
}

// After a grant, the losing attempt is not cancelled: the server would
// take a cancelled repeat for a client gone away and give back the grant
// the winning attempt delivered (see settle). It runs out on its own.
func TestHedgeGrantLeavesTheLoserRunning(t *testing.T) {
	hung, live := newNode(t, nil), newNode(t, grant)
	const attemptTimeout = time.Second
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, live.srv.URL}, AttemptTimeout: attemptTimeout,
		HedgeAfter: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	if _, err := c.Acquire(ctx, "x", AcquireOptions{}); err != nil {
		t.Fatal(err)
	}
	cancel() // the caller's context ending does not reach the loser either
	// The loser ends only at its own attempt timeout, counted from its
	// start; a cancellation would reach the server within milliseconds of
	// the grant.
	waitUntil(t, 5*time.Second, "the losing attempt's end", func() bool { return hung.left() == 1 })
	if d := time.Since(start); d < attemptTimeout*9/10 {
		t.Fatalf("the losing attempt ended %v after the call began, before its %v attempt timeout: it was cancelled", d, attemptTimeout)
	}
}

// Reads and hedging off: a negative HedgeAfter waits the attempt out.
func TestHedgeDisabled(t *testing.T) {
	hung, live := newNode(t, nil), newNode(t, grant)
	c := newTestClient(t, Config{Endpoints: []string{hung.srv.URL, live.srv.URL}, AttemptTimeout: 300 * time.Millisecond,
		HedgeAfter: -1})
	start := time.Now()
	if _, err := c.Get(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("took %v: hedged although disabled", took)
	}
	waitUntil(t, 5*time.Second, "the timed-out attempt's end", func() bool { return hung.left() == 1 })
}
