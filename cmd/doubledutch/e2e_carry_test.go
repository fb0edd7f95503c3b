package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWaiterCarriedAcrossLeaderStepDown: a /getlock waiting at the leader
// when it hands leadership over (a graceful shutdown) is carried by a 307
// to the new leader, where a client that follows redirects gets the lock
// once the holder's lifetime ends: one grant, with a fencing token above
// the holder's, and nobody else holding it.
func TestWaiterCarriedAcrossLeaderStepDown(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.leader()
	base := ec.urls[lead]
	code, held, _ := ec.do(ec.follow, http.MethodPost, base+"/v1/locks/carried", strings.NewReader(`{"lifetime":2,"owner":"holder"}`),
		"Authorization", "Bearer "+testKey)
	if code != http.StatusOK {
		t.Fatalf("holder: %d %v", code, held)
	}
	holderFence := held["fencing_token"].(float64)
	type answer struct {
		code int
		body map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		c, b, _ := ec.do(ec.follow, http.MethodGet, base+"/getlock?lockname=carried&timeout=15&auth="+testKey, nil)
		got <- answer{c, b}
	}()
	waitUntil(t, 10*time.Second, "the waiter to queue at the leader", func() bool {
		_, info, _ := ec.do(ec.client, http.MethodGet, base+"/v1/locks/carried", nil, "Authorization", "Bearer "+testKey)
		w, _ := info["waiters"].(float64)
		return w == 1
	})
	if err := ec.nodes[lead].shutdown(); err != nil {
		t.Logf("shutdown of the old leader: %v", err)
	}
	var a answer
	select {
	case a = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the carried waiter got no answer")
	}
	fence, _ := a.body["fencingtoken"].(float64)
	if a.code != http.StatusOK || a.body["lockacquired"] != true || fence <= holderFence {
		t.Fatalf("carried waiter: %d %v (holder's fence %v)", a.code, a.body, holderFence)
	}
	// The lock is held by the carried waiter's grant and nobody else's.
	var now map[string]any
	for i, u := range ec.urls {
		if i == lead {
			continue
		}
		c, b, _ := ec.do(ec.follow, http.MethodGet, u+"/v1/locks/carried", nil, "Authorization", "Bearer "+testKey)
		if c == http.StatusOK {
			now = b
			break
		}
	}
	if now == nil || now["fencing_token"] != fence {
		t.Fatalf("lock now %v, want the carried waiter's fence %v", now, fence)
	}
}
