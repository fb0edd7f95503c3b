package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// carryAnswer is what a waiter in its own goroutine got, and the
// redirects its client followed to get it.
type carryAnswer struct {
	code  int
	body  map[string]any
	hops  []string // the Location of every 307 followed
	err   error
	label string
}

// sendFollowing sends a request in the background through a client that
// follows 307s the way Go's http.Client does (same method, body resent)
// and records every hop; the answer arrives on the returned channel. It
// never fails the test itself (it runs off the test goroutine).
func (ec *e2eCluster) sendFollowing(label, method, url, body string, header ...string) <-chan carryAnswer {
	out := make(chan carryAnswer, 1)
	var mu sync.Mutex
	var hops []string
	c := &http.Client{Transport: ec.follow.Transport, Timeout: 60 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			mu.Lock()
			hops = append(hops, req.URL.String())
			mu.Unlock()
			if len(via) >= 10 {
				return fmt.Errorf("%d redirects", len(via))
			}
			return nil
		}}
	go func() {
		a := carryAnswer{label: label}
		defer func() {
			mu.Lock()
			a.hops = append([]string(nil), hops...)
			mu.Unlock()
			out <- a
		}()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			a.err = err
			return
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			a.err = err
			return
		}
		defer resp.Body.Close()
		a.code = resp.StatusCode
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &a.body); err != nil {
			a.err = fmt.Errorf("%d non-JSON answer %q", resp.StatusCode, data)
		}
	}()
	return out
}

// await returns the background answer, or fails the test after timeout.
func await(t *testing.T, ch <-chan carryAnswer, timeout time.Duration) carryAnswer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("%s: %v (hops %v)", a.label, a.err, a.hops)
		}
		t.Logf("%s: %d %v via %v", a.label, a.code, a.body, a.hops)
		return a
	case <-time.After(timeout):
		t.Fatalf("no answer within %v", timeout)
		return carryAnswer{}
	}
}

// noAnswerYet fails the test if ch already holds an answer.
func noAnswerYet(t *testing.T, ch <-chan carryAnswer, what string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("%s answered early: %d %v via %v (%v)", what, a.code, a.body, a.hops, a.err)
	default:
	}
}

// lockAt reads the lock from the node at url (the leader answers; a
// follower redirects there).
func (ec *e2eCluster) lockAt(url, name string) (int, map[string]any) {
	code, m, _ := ec.do(ec.follow, http.MethodGet, url+"/v1/locks/"+name, nil, "Authorization", "Bearer "+testKey)
	return code, m
}

// bearer is the v1 lock key header.
func bearer() []string { return []string{"Authorization", "Bearer " + testKey} }
