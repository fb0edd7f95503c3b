package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

var otherLeader = cluster.LeaderInfo{ID: "n2", APIURL: "https://n2.test:8443/"}

func TestFollowerRedirectsWithMethodPathAndQuery(t *testing.T) {
	h := newHarness(t)
	h.f.setLeader(otherLeader)
	for _, r := range []req{
		{method: http.MethodGet, target: "/getlock?auth=" + testKey + "&lockname=a%2Fb&timeout=0.5"},
		{method: http.MethodDelete, target: "/releaselock?lockname=a&token=00112233445566778899aabbccddeeff"},
		{method: http.MethodGet, target: "/status", bearer: testKey},
		{method: http.MethodPost, target: "/v1/locks/jobs%2Fnightly", body: `{"wait":1}`, bearer: testKey},
		{method: http.MethodDelete, target: "/v1/locks/x", body: `{"token":"00112233445566778899aabbccddeeff"}`, bearer: testKey},
		{method: http.MethodPost, target: "/v1/locks/x/refresh", bearer: testKey},
		{method: http.MethodGet, target: "/v1/locks/x", bearer: testKey},
		{method: http.MethodGet, target: "/v1/locks?prefix=a&limit=5", bearer: testKey},
	} {
		rec := h.do(r)
		if rec.Code != http.StatusTemporaryRedirect {
			t.Fatalf("%s %s: status %d, want 307: %s", r.method, r.target, rec.Code, rec.Body.String())
		}
		want := "https://n2.test:8443" + r.target
		if loc := rec.Header().Get("Location"); loc != want {
			t.Errorf("%s %s: Location %q, want %q", r.method, r.target, loc, want)
		}
	}
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("follower proposed %d commands", n)
	}
}

func TestNoLeaderIs503WithRetryAfter(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LeaderWait = 50 * time.Millisecond })
	for _, li := range []cluster.LeaderInfo{
		{},         // no leader known
		{ID: "n2"}, // leader known, URL not yet announced
		{ID: fakeSelf, APIURL: "http://n1.test:8001"}, // this node, not ready yet: no self-redirect loop
	} {
		h.f.setLeader(li)
		for _, r := range []req{
			{method: http.MethodGet, target: "/getlock?lockname=a", bearer: testKey},
			{method: http.MethodPost, target: "/v1/locks/a", bearer: testKey},
		} {
			rec := h.do(r)
			wantError(t, rec, http.StatusServiceUnavailable, "no_leader")
			if rec.Header().Get("Retry-After") == "" || rec.Header().Get("Location") != "" {
				t.Errorf("%+v: headers %v", li, rec.Header())
			}
		}
	}
}

func TestEveryNodeAnswersHealthClusterAndStaleReads(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("a", `{"owner":"me"}`)
	_ = tok
	h.f.setLeader(otherLeader)
	h.f.stateMu.Lock()
	h.f.staleness = 1500 * 1e6 // 1.5 s
	h.f.stateMu.Unlock()

	wantOK(t, h.do(req{method: http.MethodGet, target: "/v1/health"}))
	if m := wantOK(t, h.v1(http.MethodGet, "/v1/cluster", "")); m["raft_state"] != "Follower" || m["last_contact"] != 1.5 {
		t.Fatalf("cluster %v", m)
	}
	rec := h.v1(http.MethodGet, "/v1/locks/a?stale=true", "")
	m := wantOK(t, rec)
	if m["owner"] != "me" || m["staleness"] != 1.5 || rec.Header().Get(headerStaleness) != "1.500" {
		t.Fatalf("stale read %v %v", m, rec.Header())
	}
	rec = h.v1(http.MethodGet, "/v1/locks?stale=true", "")
	if m := wantOK(t, rec); len(m["locks"].([]any)) != 1 || rec.Header().Get(headerStaleness) == "" {
		t.Fatalf("stale list %v", m)
	}
	// Without stale=true a read is linearizable: the leader's.
	if rec := h.v1(http.MethodGet, "/v1/locks/a?stale=false", ""); rec.Code != http.StatusTemporaryRedirect {
		t.Fatalf("non-stale read on a follower: %d", rec.Code)
	}
}

func TestFollowerChecksTheKeyBeforeRedirecting(t *testing.T) {
	h := newHarness(t)
	h.f.setLeader(otherLeader)
	wantError(t, h.do(req{method: http.MethodPost, target: "/v1/locks/a"}), http.StatusUnauthorized, "unauthorized")
}

// A proposal that finds leadership gone is redirected like any request
// that reaches a follower.
func TestProposalOnLostLeadershipRedirects(t *testing.T) {
	h := newHarness(t)
	h.f.setOnPropose(func(ctx ctxT, c cmdT) error {
		h.f.setLeader(otherLeader)
		return cluster.ErrNotLeader
	})
	rec := h.v1(http.MethodPost, "/v1/locks/a?x=1", `{"lifetime":3}`)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusTemporaryRedirect || err != nil || loc.Host != "n2.test:8443" || loc.Path != "/v1/locks/a" ||
		loc.Query().Get("x") != "1" || loc.Query().Get("request_id") == "" {
		t.Fatalf("status %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
}
