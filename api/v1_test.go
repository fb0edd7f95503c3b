package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// acquire takes name through v1 and returns the session token.
func (h *harness) acquire(name, body string) string {
	h.t.Helper()
	m := wantOK(h.t, h.v1(http.MethodPost, "/v1/locks/"+name, body))
	return m["session_token"].(string)
}

func TestV1AcquireReadRelease(t *testing.T) {
	h := newHarness(t)
	m := wantOK(t, h.v1(http.MethodPost, "/v1/locks/db", `{"lifetime": 5.5, "owner": "alice"}`))
	tok, _ := m["session_token"].(string)
	if !hex32.MatchString(tok) || m["name"] != "db" || m["owner"] != "alice" || m["lifetime"] != 5.5 {
		t.Fatalf("grant %v", m)
	}
	if e := m["expires_in"].(float64); e <= 5 || e > 5.5 {
		t.Fatalf("expires_in %v", e)
	}
	fence := m["fencing_token"].(float64)

	info := wantOK(t, h.v1(http.MethodGet, "/v1/locks/db", ""))
	if info["owner"] != "alice" || info["fencing_token"] != fence || info["waiters"] != 0.0 {
		t.Fatalf("info %v", info)
	}
	if _, ok := info["session_token"]; ok || strings.Contains(fmt.Sprint(info), tok) {
		t.Fatalf("read shows the session token: %v", info)
	}

	busy := wantError(t, h.v1(http.MethodPost, "/v1/locks/db", ""), http.StatusConflict, "busy")
	holder := busy["error"].(map[string]any)["lock"].(map[string]any)
	if holder["owner"] != "alice" || holder["fencing_token"] != fence || strings.Contains(fmt.Sprint(busy), tok) {
		t.Fatalf("busy answer %v", busy)
	}

	wantError(t, h.v1(http.MethodDelete, "/v1/locks/db", fmt.Sprintf(`{"token":"%032x"}`, 1)), http.StatusConflict, "not_held")
	rel := wantOK(t, h.v1(http.MethodDelete, "/v1/locks/db", `{"token":"`+tok+`"}`))
	if rel["released"] != true || rel["fencing_token"] != fence {
		t.Fatalf("release %v", rel)
	}
	wantError(t, h.v1(http.MethodGet, "/v1/locks/db", ""), http.StatusNotFound, "not_found")
	wantError(t, h.v1(http.MethodDelete, "/v1/locks/db", `{"token":"`+tok+`"}`), http.StatusConflict, "not_held")
}

func TestV1TokenInHeader(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("db", "")
	rec := h.do(req{method: http.MethodPost, target: "/v1/locks/db/refresh", body: `{"lifetime": 100}`,
		bearer: testKey, header: map[string]string{headerToken: tok}})
	if m := wantOK(t, rec); m["lifetime"] != 100.0 || m["expires_in"].(float64) < 99 {
		t.Fatalf("refresh %v", m)
	}
	rec = h.do(req{method: http.MethodDelete, target: "/v1/locks/db", bearer: testKey,
		header: map[string]string{headerToken: tok}})
	wantOK(t, rec)
	rec = h.do(req{method: http.MethodDelete, target: "/v1/locks/db", body: fmt.Sprintf(`{"token":"%032x"}`, 2),
		bearer: testKey, header: map[string]string{headerToken: tok}})
	wantError(t, rec, http.StatusBadRequest, "bad_request")
}

func TestV1Refresh(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("db", `{"lifetime": 1}`)
	m := wantOK(t, h.v1(http.MethodPost, "/v1/locks/db/refresh", `{"token":"`+tok+`"}`))
	if m["lifetime"] != DefaultLifetime.Seconds() {
		t.Fatalf("refresh without a lifetime: %v", m)
	}
	wantError(t, h.v1(http.MethodPost, "/v1/locks/db/refresh", fmt.Sprintf(`{"token":"%032x"}`, 3)), http.StatusConflict, "not_held")
	wantError(t, h.v1(http.MethodPost, "/v1/locks/other/refresh", `{"token":"`+tok+`"}`), http.StatusConflict, "not_held")
}

func TestV1NamesArePercentEncodedSegments(t *testing.T) {
	h := newHarness(t)
	h.acquire("jobs%2Fnightly%20run", "")
	if _, held := h.f.m.Get("jobs/nightly run"); !held {
		t.Fatal("name not decoded")
	}
	if m := wantOK(t, h.v1(http.MethodGet, "/v1/locks/jobs%2Fnightly%20run", "")); m["name"] != "jobs/nightly run" {
		t.Fatalf("info %v", m)
	}
	wantError(t, h.v1(http.MethodGet, "/v1/locks/jobs/nightly", ""), http.StatusNotFound, "not_found")
}

func TestV1ListPages(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"a5", "a1", "b1", "a3", "a2", "a4"} {
		h.acquire(n, `{"owner":"o-`+n+`"}`)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		m := wantOK(t, h.v1(http.MethodGet, "/v1/locks?prefix=a&limit=2&after="+after, ""))
		for _, l := range m["locks"].([]any) {
			e := l.(map[string]any)
			got = append(got, e["name"].(string))
			if e["owner"] != "o-"+e["name"].(string) || e["session_token"] != nil {
				t.Fatalf("entry %v", e)
			}
		}
		next, _ := m["next"].(string)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		after = next
	}
	if strings.Join(got, ",") != "a1,a2,a3,a4,a5" {
		t.Fatalf("listed %v", got)
	}
	m := wantOK(t, h.v1(http.MethodGet, "/v1/locks", ""))
	if len(m["locks"].([]any)) != 6 {
		t.Fatalf("default list %v", m)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=1&limit=2", "prefix=%00", "stale=maybe"} {
		wantError(t, h.v1(http.MethodGet, "/v1/locks?"+q, ""), http.StatusBadRequest, "bad_request")
	}
}

func TestV1RequestIDMakesRetriesSafe(t *testing.T) {
	h := newHarness(t)
	first := wantOK(t, h.v1(http.MethodPost, "/v1/locks/db", `{"request_id":"req-1-0123456789ab"}`))
	again := wantOK(t, h.v1(http.MethodPost, "/v1/locks/db", `{"request_id":"req-1-0123456789ab"}`))
	if first["session_token"] != again["session_token"] || again["duplicate"] != true {
		t.Fatalf("retry answered %v after %v", again, first)
	}
	rec := h.do(req{method: http.MethodPost, target: "/v1/locks/db", bearer: testKey,
		header: map[string]string{headerRequestID: "req-1-0123456789ab"}})
	if m := wantOK(t, rec); m["session_token"] != first["session_token"] {
		t.Fatalf("Idempotency-Key retry answered %v", m)
	}
	if n := len(h.f.grantedOwners()); n != 1 {
		t.Fatalf("%d grants for one request", n)
	}

	// Ids are scoped to the kind of request and the lock: the same id on
	// another lock or for a release acts afresh.
	other := wantOK(t, h.v1(http.MethodPost, "/v1/locks/other", `{"request_id":"req-1-0123456789ab"}`))
	if other["session_token"] == first["session_token"] || other["duplicate"] == true {
		t.Fatalf("an id on another lock was answered from memory: %v", other)
	}
	body := `{"token":"` + first["session_token"].(string) + `","request_id":"req-1-0123456789ab"}`
	wantOK(t, h.v1(http.MethodDelete, "/v1/locks/db", body))
}

func TestV1Auth(t *testing.T) {
	h := newHarness(t)
	for _, r := range []req{
		{method: http.MethodPost, target: "/v1/locks/a"},
		{method: http.MethodPost, target: "/v1/locks/a", bearer: "wrong"},
		{method: http.MethodPost, target: "/v1/locks/a?auth=" + testKey}, // v1 takes the header only
		{method: http.MethodGet, target: "/v1/locks"},
		{method: http.MethodGet, target: "/v1/cluster", bearer: testKey + "x"},
		{method: http.MethodPost, target: "/v1/locks/a", header: map[string]string{"Authorization": "Token " + testKey}},
	} {
		wantError(t, h.do(r), http.StatusUnauthorized, "unauthorized")
	}
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals for unauthorized requests", n)
	}
	h.do(req{method: http.MethodPost, target: "/v1/locks/a", header: map[string]string{"Authorization": "bearer " + testKey}})
	if _, held := h.f.m.Get("a"); !held {
		t.Fatal("a lower-case bearer scheme was refused")
	}
}

func TestV1Validation(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 256; c.MaxNameLength = 32 })
	tok := fmt.Sprintf("%032x", 9)
	cases := []struct {
		method, target, body string
		status               int
		code                 string
	}{
		{"POST", "/v1/locks/a", `{"lifetime": -1}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetime": 0}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetime": 1e400}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetime": 2592001}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetime": "5"}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"wait": -0.5}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"wait": 601}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetme": 5}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"owner": "a\u0000b"}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"request_id": "has space"}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"request_id": "x#1"}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{} {}`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `[1]`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"lifetime": 5`, 400, "bad_request"},
		{"POST", "/v1/locks/a", `{"owner":"` + strings.Repeat("x", 300) + `"}`, 413, "too_large"},
		{"POST", "/v1/locks/a%0A", ``, 400, "bad_request"},
		{"POST", "/v1/locks/%FF", ``, 400, "bad_request"},
		{"POST", "/v1/locks/" + strings.Repeat("n", 33), ``, 400, "bad_request"},
		{"POST", "/v1/locks/", ``, 404, "not_found"},
		{"DELETE", "/v1/locks/a", ``, 400, "bad_request"},
		{"DELETE", "/v1/locks/a", `{"token": "short"}`, 400, "bad_request"},
		{"DELETE", "/v1/locks/a", `{"token": "` + tok + `", "extra": 1}`, 400, "bad_request"},
		{"POST", "/v1/locks/a/refresh", `{"token": "` + tok + `", "lifetime": -1}`, 400, "bad_request"},
		{"POST", "/v1/locks/a/refresh", `{"lifetime": 5}`, 400, "bad_request"},
		{"GET", "/v1/locks/%00", ``, 400, "bad_request"},
		{"PUT", "/v1/locks/a", ``, 405, "method_not_allowed"},
		{"GET", "/v2/whatever", ``, 404, "not_found"},
	}
	for _, c := range cases {
		rec := h.v1(c.method, c.target, c.body)
		if rec.Code != c.status || errCode(t, rec) != c.code {
			t.Errorf("%s %s %s: %d %s", c.method, c.target, c.body, rec.Code, rec.Body.String())
		}
	}
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals made for bad requests", n)
	}
}

func TestClusterErrorsMapToStatuses(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("raft: %w", cluster.ErrUnknownOutcome), http.StatusGatewayTimeout, "unknown_outcome"},
		{fmt.Errorf("enqueue: %w", cluster.ErrNotApplied), http.StatusServiceUnavailable, "unavailable"},
		{cluster.ErrShutdown, http.StatusServiceUnavailable, "unavailable"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "internal"},
	} {
		// A leader that keeps refusing "not applied" is retried until
		// the ProposeTimeout ends (cluster/locking, proposeHere): keep it short.
		h := newHarness(t, func(c *Config) { c.ProposeTimeout = 100 * time.Millisecond })
		// The release's token holds the lock, so it is proposed (a
		// release that cannot succeed is refused without proposing).
		h.f.apply(fsm.Command{Kind: fsm.KindAcquire, Name: "held", Token: fsm.Token{15: 1}, Lifetime: 60_000})
		h.f.setOnPropose(func(context.Context, fsm.Command) error { return c.err })
		for _, r := range []*req{
			{method: http.MethodPost, target: "/v1/locks/a", bearer: testKey},
			{method: http.MethodGet, target: "/getlock?lockname=a", bearer: testKey},
			{method: http.MethodDelete, target: "/releaselock?lockname=held&token=" + fmt.Sprintf("%032x", 1)},
		} {
			rec := h.do(*r)
			m := wantError(t, rec, c.status, c.code)
			if c.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Errorf("%v: no Retry-After", c.err)
			}
			if c.code == "internal" && strings.Contains(rec.Body.String(), "fire") {
				t.Errorf("internal error details leaked: %v", m)
			}
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	h := newHarness(t)
	h.f.setOnPropose(func(context.Context, fsm.Command) error { panic("boom") })
	wantError(t, h.v1(http.MethodPost, "/v1/locks/a", ""), http.StatusInternalServerError, "internal")
	wantOK(t, h.do(req{method: http.MethodGet, target: "/v1/health"}))
}

func TestClusterAndHealth(t *testing.T) {
	h := newHarness(t)
	h.acquire("a", "")
	m := wantOK(t, h.v1(http.MethodGet, "/v1/cluster", ""))
	leader := m["leader"].(map[string]any)
	if m["node_id"] != fakeSelf || leader["id"] != fakeSelf || leader["is_self"] != true ||
		m["term"] != 3.0 || m["applied_index"].(float64) < 1 || len(m["servers"].([]any)) != 1 {
		t.Fatalf("cluster %v", m)
	}
	hm := wantOK(t, h.do(req{method: http.MethodGet, target: "/v1/health"}))
	if hm["status"] != "ok" || hm["is_leader"] != true {
		t.Fatalf("health %v", hm)
	}
	h.f.setLeader(cluster.LeaderInfo{})
	rec := h.do(req{method: http.MethodGet, target: "/v1/health"})
	wantError(t, rec, http.StatusServiceUnavailable, "no_leader")
}

func TestNewRequiresAKey(t *testing.T) {
	if _, err := New(Config{}, newFake(), nil); err == nil {
		t.Fatal("New accepted an empty API key")
	}
	s, err := New(Config{InsecureNoAuth: true}, newFake(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := &harness{t: t, f: newFake(), s: s}
	wantOK(t, h.do(req{method: http.MethodGet, target: "/getlock?lockname=a"}))
}

func TestSecretsNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	f := newFake()
	defer f.close()
	s, err := New(Config{APIKey: testKey}, f, hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := &harness{t: t, f: f, s: s}
	tok := h.getlock("lockname=a")["sessiontoken"].(string)
	h.do(req{method: http.MethodDelete, target: "/releaselock?auth=" + testKey + "&lockname=a&token=" + tok})
	h.do(req{method: http.MethodGet, target: "/status?auth=wrong-" + testKey})
	h.f.setOnPropose(func(context.Context, fsm.Command) error { return errors.New("x") })
	h.do(req{method: http.MethodGet, target: "/getlock?lockname=a&auth=" + testKey})
	out := buf.String()
	if !strings.Contains(out, "lockname=a") || !strings.Contains(out, "auth=REDACTED") {
		t.Fatalf("request log missing: %s", out)
	}
	if strings.Contains(out, testKey) || strings.Contains(out, tok) {
		t.Fatalf("a secret was logged: %s", out)
	}
}

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"auth=k&lockname=a&token=t":      "auth=REDACTED&lockname=a&token=REDACTED",
		"lockname=a&timeout=1&%61uth=k":  "lockname=a&timeout=1&%61uth=REDACTED",
		"prefix=p&after=x&limit=3&x=%zz": "prefix=p&after=x&limit=3&REDACTED",
		"stale":                          "stale",
		"flag":                           "REDACTED",
	} {
		if got := redactQuery(in); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRemainingNeverNegative(t *testing.T) {
	if r := remaining(100, 200); r != 0 {
		t.Fatal(r)
	}
	if r := remaining(2500, 1000); math.Abs(r-1.5) > 1e-9 {
		t.Fatal(r)
	}
}
