package api

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/api/codes"
	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// TestServerErrorsHideCauses: a 5xx body carries a code and a short
// message, never a server path or a raw I/O error (issue 9 item 4).
func TestServerErrorsHideCauses(t *testing.T) {
	disk := &fs.PathError{Op: "write", Path: "/var/lib/doubledutch/raft.db", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		kind   error
		status int
		code   string
	}{
		{cluster.ErrUnknownOutcome, http.StatusGatewayTimeout, "unknown_outcome"},
		{cluster.ErrNotApplied, http.StatusServiceUnavailable, "unavailable"},
		{cluster.ErrShutdown, http.StatusServiceUnavailable, "unavailable"},
		{disk, http.StatusInternalServerError, "internal"},
	} {
		// A leader that keeps refusing "not applied" is retried until
		// the ProposeTimeout ends (cluster/locking, proposeHere): keep it short.
		h := newHarness(t, func(c *Config) { c.ProposeTimeout = 100 * time.Millisecond })
		cause := fmt.Errorf("%w: %w", tc.kind, disk)
		h.f.setOnPropose(func(context.Context, fsm.Command) error { return cause })
		for _, rec := range []interface{ Result() *http.Response }{
			h.v1(http.MethodPost, "/v1/locks/x", `{"request_id":"r1-0123456789abcdef"}`),
			h.get("/getlock?auth=" + testKey + "&lockname=x"),
		} {
			resp := rec.Result()
			var m map[string]any
			decodeResp(t, resp, &m)
			e, _ := m["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if resp.StatusCode != tc.status || e["code"] != tc.code || msg == "" {
				t.Fatalf("%v: %d %v", tc.kind, resp.StatusCode, m)
			}
			for _, leak := range []string{"raft.db", "/var/lib", "no space"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("%v: the body leaks %q: %q", tc.kind, leak, msg)
				}
			}
		}
	}
}

// TestErrorTableCodesKnown: every code the error table (and the fallback
// for unknown errors) can answer is a code of package codes, with a
// class, so that clients classify it as the server means it.
func TestErrorTableCodesKnown(t *testing.T) {
	for _, e := range append(errorTable, internalEntry) {
		if !codes.Known(e.code) || codes.Classify(e.code) == codes.Unclassified {
			t.Errorf("%v -> %d %q: not in package codes", e.err, e.status, e.code)
		}
		// A 5xx or 429 that is "definite" would stop clients retrying
		// what the server says may pass.
		if (e.status >= 500 || e.status == http.StatusTooManyRequests) && !codes.Retryable(e.code) {
			t.Errorf("%q (%d) is not retryable", e.code, e.status)
		}
	}
	for c := range serverMessages {
		if !codes.Known(c) {
			t.Errorf("server message for unknown code %q", c)
		}
	}
}
