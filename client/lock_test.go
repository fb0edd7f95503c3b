package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNode answers grants and refreshes from a script: an injected
// failure for the handle's edges, not a model of the cluster.
type fakeNode struct {
	mu        sync.Mutex
	refreshes int
	refresh   func(n int) (int, string) // status and body of the n-th refresh
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/refresh") {
		w.Write([]byte(`{"name":"x","fencing_token":5,"lifetime":1,"expires_in":1,"session_token":"00000000000000000000000000000000"}`))
		return
	}
	f.mu.Lock()
	f.refreshes++
	n := f.refreshes
	f.mu.Unlock()
	status, body := f.refresh(n)
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func (f *fakeNode) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

const refreshed = `{"name":"x","fencing_token":5,"lifetime":1,"expires_in":1}`

// A refused refresh loses the handle at once, before its deadline.
func TestRefusedRefreshLosesTheHandle(t *testing.T) {
	f := &fakeNode{refresh: func(int) (int, string) {
		return http.StatusConflict, `{"error":{"code":"not_held","message":"expired"}}`
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Refresh(context.Background()); !errors.Is(err, ErrLockLost) {
		t.Fatalf("refused refresh: %v", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Fatal("Lost open after a refused refresh")
	}
	if !time.Now().Before(l.Deadline()) {
		t.Fatal("test too slow to tell a refusal from the deadline")
	}
}

// Without refreshes Lost closes at the deadline, which lies before first
// send + lifetime by the clock-rate margin.
func TestLostClosesAtTheDeadline(t *testing.T) {
	srv := httptest.NewServer(&fakeNode{})
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, ClockRateError: 0.05})
	sent := time.Now()
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	// The first send lies between sent and returned; the deadline is 95 %
	// of the lifetime after it.
	if d := l.Deadline(); d.Before(sent.Add(190*time.Millisecond)) || d.After(returned.Add(190*time.Millisecond)) {
		t.Fatalf("deadline %v after the call began (returned after %v), want 190ms after the first send", d.Sub(sent), returned.Sub(sent))
	}
	<-l.Lost()
	if time.Now().Before(l.Deadline()) {
		t.Fatal("Lost closed before the deadline")
	}
	if !errors.Is(l.Err(), ErrLockLost) || errors.Is(l.Err(), ErrReleased) {
		t.Fatalf("Err: %v", l.Err())
	}
}

// A repeated request id anchors the deadline at the first call's send;
// with KeepAlive a grant whose deadline is mostly spent is refreshed
// before Acquire returns, so the handle is not born lost.
func TestLateGrantIsReanchoredWithKeepAlive(t *testing.T) {
	f := &fakeNode{refresh: func(int) (int, string) { return http.StatusOK, refreshed }}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	first := time.Now().Add(-900 * time.Millisecond)
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: time.Second, RequestID: "r", FirstSent: first})
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Deadline(); d.After(first.Add(time.Second)) {
		t.Fatalf("deadline %v after the first send of the id, want within a lifetime", d.Sub(first))
	}
	if f.count() != 0 {
		t.Fatal("refreshed without KeepAlive")
	}
	before := time.Now()
	l, err = c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: time.Second, RequestID: "r", FirstSent: first, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	if f.count() == 0 || l.Deadline().Before(before.Add(900*time.Millisecond)) {
		t.Fatalf("not re-anchored: %d refreshes, deadline in %v", f.count(), time.Until(l.Deadline()))
	}
}

// WithLock's function sees its context end when the keepalive's refresh
// is refused, and the call reports the loss even though fn returned nil.
func TestWithLockEndsTheWorkWhenTheLockIsLost(t *testing.T) {
	f := &fakeNode{refresh: func(int) (int, string) {
		return http.StatusConflict, `{"error":{"code":"not_held","message":"expired"}}`
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	var fence uint64
	err := c.WithLock(context.Background(), "x", AcquireOptions{Lifetime: time.Second},
		func(ctx context.Context, l *Lock) error {
			fence = l.Fence()
			<-ctx.Done()
			return nil
		})
	if !errors.Is(err, ErrLockLost) || fence != 5 {
		t.Fatalf("WithLock after a refused refresh: %v (fence %d)", err, fence)
	}
	if f.count() == 0 {
		t.Fatal("the keepalive never refreshed")
	}
}
