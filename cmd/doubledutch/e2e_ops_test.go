package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/doubledutch/doubledutch/client"
)

// scrape reads node i's /metrics (no key needed) as metric families.
func (ec *e2eCluster) scrape(i int) (map[string]*dto.MetricFamily, string) {
	ec.t.Helper()
	resp, err := ec.client.Get(ec.urls[i] + "/metrics")
	if err != nil {
		ec.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		ec.t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		ec.t.Fatalf("parse /metrics: %v", err)
	}
	return fams, string(body)
}

// metricValue finds the sample of name whose labels include want; for a
// histogram it returns the sample count.
func metricValue(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetricsMatchScriptedWorkload runs a known workload and checks that
// the leader's /metrics counts exactly it: grants, releases, an expiry, a
// handoff to a waiter, the waiter count while it waits, and Raft's state.
func TestMetricsMatchScriptedWorkload(t *testing.T) {
	ec := startE2ECluster(t, false)
	c := ec.v1Client()
	ctx := context.Background()
	// Acquired twice under one request id: nobody waits for the name, so
	// the repeat is proposed and the log answers it from the request-id
	// table (a dedup hit) with the same grant.
	var a *client.Lock
	for range 2 {
		again, err := c.Acquire(ctx, "secret-name-a", client.AcquireOptions{Lifetime: time.Minute, Owner: "owner-a", RequestID: "acquire-a-once-0123456789"})
		if err != nil {
			t.Fatal(err)
		}
		if a != nil && again.Token() != a.Token() {
			t.Fatal("a repeated request id was granted a second time")
		}
		a = again
	}
	// Released twice under one request id: the leader answers the repeat
	// from its applied request-id table without proposing it (the token
	// no longer holds the lock), so it is neither applied nor a dedup hit.
	for range 2 {
		if err := c.Release(ctx, a.Name(), a.Token(), "release-a-once-0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Acquire(ctx, "secret-name-b", client.AcquireOptions{Lifetime: time.Second}); err != nil {
		t.Fatal(err)
	}
	held, err := c.Acquire(ctx, "secret-name-c", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Acquire(ctx, "secret-name-c", client.AcquireOptions{Lifetime: time.Minute}); !errors.Is(err, client.ErrBusy) {
		t.Fatalf("second acquire of a held lock: %v, want busy", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx, "secret-name-c", client.AcquireOptions{Lifetime: time.Minute, Wait: 30 * time.Second})
		got <- err
	}()
	waitForWaiters(t, c, "secret-name-c", 1)
	l := ec.leader()
	if fams, _ := ec.scrape(l); metricValue(fams, "doubledutch_waiters") != 1 {
		t.Fatalf("waiters gauge %v while one request waits", metricValue(fams, "doubledutch_waiters"))
	}
	if err := c.Release(ctx, held.Name(), held.Token(), ""); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// b expires on the lease clock: wait until every node applied that.
	for i := range ec.nodes {
		waitUntil(t, 10*time.Second, "b expired on every node", func() bool {
			fams, _ := ec.scrape(i)
			return metricValue(fams, "doubledutch_lock_expirations_total") == 1
		})
	}
	l = ec.leader()
	fams, body := ec.scrape(l)
	// What a node answered is counted where it was answered: sum those
	// over the nodes, in case leadership moved under load.
	answered := map[string]bool{"doubledutch_lock_operations_total": true,
		"doubledutch_lock_wait_seconds": true, "doubledutch_http_request_duration_seconds": true}
	all := make([]map[string]*dto.MetricFamily, len(ec.nodes))
	for i := range ec.nodes {
		all[i], _ = ec.scrape(i)
	}
	for _, chk := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"doubledutch_lock_operations_total", []string{"kind", "acquire", "result", "ok"}, 5},
		{"doubledutch_lock_operations_total", []string{"kind", "acquire", "result", "busy"}, 1},
		{"doubledutch_lock_operations_total", []string{"kind", "release", "result", "ok"}, 3},
		{"doubledutch_lock_wait_seconds", nil, 5},
		{"doubledutch_lock_commands_applied_total", []string{"outcome", "granted"}, 4},
		{"doubledutch_lock_commands_applied_total", []string{"outcome", "released"}, 2},
		{"doubledutch_lock_hold_seconds", nil, 3}, // a and c released, b expired
		{"doubledutch_lock_handoff_seconds", nil, 1},
		{"doubledutch_locks_held", nil, 1},
		{"doubledutch_waiters", nil, 0},
		{"doubledutch_dedup_hits_total", nil, 1},
		{"doubledutch_raft_is_leader", nil, 1},
		{"doubledutch_raft_state", []string{"state", "Leader"}, 1},
		{"doubledutch_http_request_duration_seconds", []string{"route", "/v1/locks/:name", "method", "DELETE", "code", "200"}, 3},
	} {
		got := metricValue(fams, chk.name, chk.labels...)
		if answered[chk.name] {
			got = 0
			for _, f := range all {
				got += max(0, metricValue(f, chk.name, chk.labels...))
			}
		}
		if got != chk.want {
			t.Errorf("%s%v = %v, want %v", chk.name, chk.labels, got, chk.want)
		}
	}
	if v := metricValue(fams, "doubledutch_raft_peer_entries_behind", "peer", ec.nodes[(l+1)%3].cfg.NodeID); v < 0 {
		t.Error("the leader reports no progress for a follower")
	}
	for _, secret := range []string{"secret-name", "owner-a", a.Token(), testKey} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
	// Followers count the same applied log.
	for _, f := range ec.followers() {
		ff, _ := ec.scrape(f)
		if g := metricValue(ff, "doubledutch_lock_commands_applied_total", "outcome", "granted"); g != 4 {
			t.Errorf("follower %d counts %v grants, want 4", f, g)
		}
		if v := metricValue(ff, "doubledutch_raft_is_leader"); v != 0 {
			t.Errorf("follower %d says it leads", f)
		}
	}
}

// TestReadinessAndTransferOverHTTP: /healthz and /readyz on every node;
// POST /v1/cluster/leader moves leadership to a named node (through a
// follower's redirect) with the admin key only; a node whose peers are
// gone turns unready while it stays healthy.
func TestReadinessAndTransferOverHTTP(t *testing.T) {
	ec := startE2ECluster(t, false)
	for i := range ec.nodes {
		waitUntil(t, 10*time.Second, "every node ready", func() bool {
			st, _, _ := ec.do(ec.client, http.MethodGet, ec.urls[i]+"/readyz", nil)
			return st == http.StatusOK
		})
	}
	l := ec.leader()
	target := ec.nodes[(l+1)%3].cfg.NodeID
	via := ec.urls[(l+2)%3] // a follower: redirects to the leader
	auth := []string{"Authorization", "Bearer " + testKey}
	admin := []string{"Authorization", "Bearer " + testAdminKey}
	if st, m, _ := ec.do(ec.follow, http.MethodPost, via+"/v1/cluster/leader", strings.NewReader(`{"target":"nobody"}`), admin...); st != http.StatusNotFound {
		t.Fatalf("transfer to an unknown node: %d %v", st, m)
	}
	if st, m, _ := ec.do(ec.follow, http.MethodPost, via+"/v1/cluster/leader", strings.NewReader(`{"target":1}`), admin...); st != http.StatusBadRequest {
		t.Fatalf("transfer with a bad body: %d %v", st, m)
	}
	if st, _, _ := ec.do(ec.follow, http.MethodPost, via+"/v1/cluster/leader", nil); st != http.StatusUnauthorized {
		t.Fatalf("transfer without a key: %d", st)
	}
	// The lock key moves nothing and reads no backup, on the leader or
	// through a follower.
	for _, u := range []string{ec.urls[l], via} {
		if st, m, _ := ec.do(ec.follow, http.MethodPost, u+"/v1/cluster/leader", strings.NewReader(`{"target":"`+target+`"}`), auth...); st != http.StatusUnauthorized {
			t.Fatalf("transfer with the lock key at %s: %d %v", u, st, m)
		}
		if st, m, _ := ec.do(ec.follow, http.MethodGet, u+"/v1/snapshot", nil, auth...); st != http.StatusUnauthorized {
			t.Fatalf("backup with the lock key at %s: %d %v", u, st, m)
		}
	}
	st, m, _ := ec.do(ec.follow, http.MethodPost, via+"/v1/cluster/leader", strings.NewReader(`{"target":"`+target+`"}`), admin...)
	if st != http.StatusOK || m["leader_id"] != target {
		t.Fatalf("transfer to %s: %d %v", target, st, m)
	}
	if got := ec.nodes[ec.leader()].cfg.NodeID; got != target {
		t.Fatalf("leader is %s, want %s", got, target)
	}
	// The node list with lag, on the new leader.
	l = ec.leader()
	waitUntil(t, 10*time.Second, "every follower's lag known", func() bool {
		st, m, _ := ec.do(ec.client, http.MethodGet, ec.urls[l]+"/v1/cluster", nil, auth...)
		nodes, _ := m["nodes"].([]any)
		if st != http.StatusOK || len(nodes) != 3 {
			return false
		}
		for _, n := range nodes {
			if known, _ := n.(map[string]any)["known"].(bool); !known {
				return false
			}
		}
		return true
	})

	// Stop both peers of one follower: it loses its leader, and with it
	// readiness, but stays healthy.
	f := ec.followers()[0]
	for i := range ec.nodes {
		if i != f {
			ec.nodes[i].shutdown()
		}
	}
	waitUntil(t, 15*time.Second, "the lone node unready", func() bool {
		st, _, _ := ec.do(ec.client, http.MethodGet, ec.urls[f]+"/readyz", nil)
		return st == http.StatusServiceUnavailable
	})
	if st, _, _ := ec.do(ec.client, http.MethodGet, ec.urls[f]+"/healthz", nil); st != http.StatusOK {
		t.Fatalf("healthz of a live node without a leader: %d", st)
	}
}

// TestHealthCommandEndpoints: `doubledutch health` keeps checking
// /v1/health by default and checks /readyz or /healthz on request.
func TestHealthCommandEndpoints(t *testing.T) {
	ec := startE2ECluster(t, false)
	getenv := func(string) string { return "" }
	for _, ep := range []string{"", "/readyz", "/healthz"} {
		args := []string{"health", "--url", ec.urls[0]}
		if ep != "" {
			args = append(args, "--endpoint", ep)
		}
		var out, errOut bytes.Buffer
		waitUntil(t, 10*time.Second, "health "+ep, func() bool {
			out.Reset()
			errOut.Reset()
			return run(args, getenv, &out, &errOut) == 0
		})
		if !strings.HasPrefix(out.String(), "200 OK") {
			t.Errorf("health %s printed %q", ep, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"health", "--url", ec.urls[0], "--endpoint", "/v1/locks"}, getenv, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--endpoint must be") {
		t.Errorf("health with an unknown endpoint: exit %d, %q", code, errOut.String())
	}
}

// TestTransferLeaderCommand: `doubledutch transfer-leader` through a
// follower moves leadership away from the leader (no target) and then to
// a named node; an unknown node is a clear error, and so is the lock key
// in place of the admin key.
func TestTransferLeaderCommand(t *testing.T) {
	ec := startE2ECluster(t, false)
	getenv := func(string) string { return "" }
	first := ec.leader()
	via := ec.urls[(first+1)%3]
	var out, errOut bytes.Buffer
	if code := run([]string{"transfer-leader", "--url", via, "--admin-key", testKey}, getenv, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "401") {
		t.Fatalf("transfer-leader with the lock key: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"transfer-leader", "--url", via, "--admin-key", testAdminKey}, getenv, &out, &errOut); code != 0 {
		t.Fatalf("transfer-leader: exit %d: %s", code, errOut.String())
	}
	if next := ec.leader(); next == first {
		t.Fatalf("leader still %s after transfer-leader (%s)", ec.nodes[first].cfg.NodeID, out.String())
	}
	target := ec.nodes[first].cfg.NodeID
	out.Reset()
	// The key from a file named in the environment, as in the containers.
	keyFile := filepath.Join(t.TempDir(), "admin-key")
	if err := os.WriteFile(keyFile, []byte(testAdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromEnv := func(name string) string {
		if name == "DOUBLEDUTCH_ADMIN_KEY_FILE" {
			return keyFile
		}
		return ""
	}
	if code := run([]string{"transfer-leader", "--url", via, target}, fromEnv, &out, &errOut); code != 0 {
		t.Fatalf("transfer-leader %s: exit %d: %s", target, code, errOut.String())
	}
	if !strings.Contains(out.String(), "to "+target) || ec.leader() != first {
		t.Fatalf("transfer-leader %s: %q, leader %s", target, out.String(), ec.nodes[ec.leader()].cfg.NodeID)
	}
	errOut.Reset()
	if code := run([]string{"transfer-leader", "--url", via, "--admin-key-file", keyFile, "nobody"}, getenv, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "404") {
		t.Fatalf("transfer-leader to an unknown node: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"transfer-leader", "--url", via}, getenv, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "DOUBLEDUTCH_ADMIN_KEY") {
		t.Fatalf("transfer-leader without a key: exit %d, %q", code, errOut.String())
	}
}
