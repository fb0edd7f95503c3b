package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

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
	var served atomic.Int32
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"name":"x","fencing_token":7,"lifetime":1,"expires_in":1}`))
	}))
	defer live.Close()

	c := New([]string{live.URL}, "k", nil)
	c.AttemptTimeout = 200 * time.Millisecond
	stale := hung.URL
	c.leader.Store(&stale)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := c.Get(ctx, "x")
	if err != nil || l.FencingToken != 7 {
		t.Fatalf("get past a hung leader: %+v %v", l, err)
	}
	if c.leader.Load() != nil {
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
