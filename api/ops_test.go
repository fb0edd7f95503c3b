package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

// TestReadyzReasons: /readyz answers 200 only while every condition holds,
// and otherwise 503 with each failing condition named; /healthz stays 200
// throughout. The lag values are the cluster's (cluster's own tests show
// a real far-behind or leaderless node reporting them).
func TestReadyzReasons(t *testing.T) {
	h := newHarness(t)
	ok := cluster.Lag{LeaderID: "n1", IsLeader: false, Contacted: true, SinceContact: 50 * time.Millisecond, CaughtUp: true, MaxBehind: 1000}
	for _, tc := range []struct {
		name   string
		modify func(*cluster.Lag)
		reason string
	}{
		{"ready", func(*cluster.Lag) {}, ""},
		{"no leader", func(l *cluster.Lag) { l.LeaderID = "" }, "no leader"},
		{"no contact yet", func(l *cluster.Lag) { l.Contacted = false }, "no contact"},
		{"silent leader", func(l *cluster.Lag) { l.SinceContact = ReadyMaxContact + time.Millisecond }, "no contact"},
		{"far behind", func(l *cluster.Lag) { l.EntriesBehind = 1001 }, "1001 committed entries"},
		{"at the bound", func(l *cluster.Lag) { l.EntriesBehind = 1000 }, ""},
		{"not caught up", func(l *cluster.Lag) { l.CaughtUp = false }, "not caught up"},
		{"shutting down", func(l *cluster.Lag) { l.ShuttingDown = true }, "shutting down"},
	} {
		lag := ok
		tc.modify(&lag)
		h.f.stateMu.Lock()
		h.f.lag = &lag
		h.f.stateMu.Unlock()
		rec := h.do(req{method: http.MethodGet, target: "/readyz"})
		st, body := rec.Code, rec.Body.String()
		want := http.StatusOK
		if tc.reason != "" {
			want = http.StatusServiceUnavailable
		}
		if st != want || (tc.reason != "" && !strings.Contains(body, tc.reason)) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, st, body, want, tc.reason)
		}
		if rec := h.do(req{method: http.MethodGet, target: "/healthz"}); rec.Code != http.StatusOK {
			t.Errorf("%s: /healthz %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	// After Close the node reports itself shutting down.
	h.f.stateMu.Lock()
	h.f.lag = &ok
	h.f.stateMu.Unlock()
	h.s.Close()
	if rec := h.do(req{method: http.MethodGet, target: "/readyz"}); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("after Close: %d %s", rec.Code, rec.Body)
	}
}

// TestMetricsNeedNoKeyAndLeakNothing: /metrics answers without a key, in
// Prometheus text format, and shows no lock name, owner or token after
// lock traffic on the handlers (against the fake: no Ops, so only the
// request-level metrics).
func TestMetricsNeedNoKeyAndLeakNothing(t *testing.T) {
	h := newHarness(t)
	if rec := h.v1(http.MethodPost, "/v1/locks/very-private-name", `{"owner":"private-owner"}`); rec.Code != http.StatusOK {
		t.Fatalf("acquire: %d %s", rec.Code, rec.Body)
	}
	rec := h.do(req{method: http.MethodGet, target: "/metrics"})
	st, metrics := rec.Code, rec.Body.String()
	if st != http.StatusOK || !strings.Contains(metrics, `doubledutch_lock_operations_total{kind="acquire",result="ok"} 1`) {
		t.Fatalf("/metrics: %d\n%s", st, metrics)
	}
	for _, secret := range []string{"very-private-name", "private-owner", testKey} {
		if strings.Contains(metrics, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}
