package api

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (h *harness) getlock(query string) map[string]any {
	h.t.Helper()
	return wantOK(h.t, h.do(req{method: http.MethodGet, target: "/getlock?auth=" + testKey + "&" + query}))
}

func TestGetLockGrantsWithOriginalFields(t *testing.T) {
	h := newHarness(t)
	m := h.getlock("lockname=db")
	if m["servername"] != "DoubleDutch" || m["lockname"] != "db" || m["lockacquired"] != true {
		t.Fatalf("answer %v", m)
	}
	if tok, _ := m["sessiontoken"].(string); !hex32.MatchString(tok) {
		t.Fatalf("sessiontoken %q is not 32 hex characters", tok)
	}
	if ft, _ := m["fencingtoken"].(float64); ft < 1 {
		t.Fatalf("fencingtoken %v", m["fencingtoken"])
	}
	lock, held := h.f.m.Get("db")
	if !held || lock.Lifetime != DefaultLifetime.Milliseconds() {
		t.Fatalf("lock %+v held=%v: want the default 30 s lifetime", lock, held)
	}
}

func TestGetLockBusyIs200NotAcquired(t *testing.T) {
	h := newHarness(t)
	h.getlock("lockname=db")
	m := h.getlock("lockname=db")
	if m["lockacquired"] != false || m["sessiontoken"] != "" {
		t.Fatalf("answer %v", m)
	}
	if _, ok := m["fencingtoken"]; ok {
		t.Fatalf("a refusal must not carry a fencing token: %v", m)
	}
}

func TestFencingTokensIncrease(t *testing.T) {
	h := newHarness(t)
	var last float64
	for i := 0; i < 5; i++ {
		m := h.getlock(fmt.Sprintf("lockname=l%d", i))
		ft := m["fencingtoken"].(float64)
		if ft <= last {
			t.Fatalf("fencing token %v after %v", ft, last)
		}
		last = ft
	}
}

func TestGetLockAuth(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []req{
		{method: http.MethodGet, target: "/getlock?lockname=a"},
		{method: http.MethodGet, target: "/getlock?auth=wrong&lockname=a"},
		{method: http.MethodGet, target: "/getlock?lockname=a", bearer: "wrong"},
		{method: http.MethodGet, target: "/getlock?auth=" + testKey + "&lockname=a", bearer: "wrong"},
		{method: http.MethodGet, target: "/getlock?lockname=a", header: map[string]string{"Authorization": "Basic " + testKey}},
	} {
		rec := h.do(tc)
		m := wantError(t, rec, http.StatusUnauthorized, "unauthorized")
		if m["lockacquired"] != false || m["servername"] == nil {
			t.Errorf("%s: legacy fields missing: %v", tc.target, m)
		}
	}
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals for unauthorized requests", n)
	}
	wantOK(t, h.do(req{method: http.MethodGet, target: "/getlock?lockname=a", bearer: testKey}))
}

func TestReleaseLock(t *testing.T) {
	h := newHarness(t)
	tok := h.getlock("lockname=db")["sessiontoken"].(string)

	// Wrong token: 400 with lockreleased false, as the original.
	rec := h.do(req{method: http.MethodDelete, target: "/releaselock?lockname=db&token=" + fmt.Sprintf("%032x", 7)})
	m := wantError(t, rec, http.StatusBadRequest, "not_held")
	if m["lockreleased"] != false || m["lockname"] != "db" {
		t.Fatalf("answer %v", m)
	}
	// A wrong auth that is given is a 401, even with the right token.
	rec = h.do(req{method: http.MethodDelete, target: "/releaselock?auth=nope&lockname=db&token=" + tok})
	wantError(t, rec, http.StatusUnauthorized, "unauthorized")
	// No auth (as the original README's example): released.
	m = wantOK(t, h.do(req{method: http.MethodDelete, target: "/releaselock?lockname=db&token=" + tok}))
	if m["lockreleased"] != true || m["lockname"] != "db" || m["servername"] == nil {
		t.Fatalf("answer %v", m)
	}
	// Twice: not held any more.
	rec = h.do(req{method: http.MethodDelete, target: "/releaselock?auth=" + testKey + "&lockname=db&token=" + tok})
	wantError(t, rec, http.StatusBadRequest, "not_held")
	// GET is not the original's method for it.
	rec = h.do(req{method: http.MethodGet, target: "/releaselock?lockname=db&token=" + tok})
	wantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestExpiredLockCannotBeReleasedWithOldToken(t *testing.T) {
	h := newHarness(t)
	tok := h.getlock("lockname=db&lifetime=0.05")["sessiontoken"].(string)
	eventually(t, "expiry", func() bool { _, held := h.f.m.Get("db"); return !held })
	rec := h.do(req{method: http.MethodDelete, target: "/releaselock?lockname=db&token=" + tok})
	wantError(t, rec, http.StatusBadRequest, "not_held")
}

func TestStatusListsLocksWithoutTokens(t *testing.T) {
	h := newHarness(t)
	h.getlock("lockname=two-weeks&lifetime=1209600")
	h.getlock("lockname=short&lifetime=20")
	m := wantOK(t, h.do(req{method: http.MethodGet, target: "/status?auth=" + testKey}))
	if m["status"] != "ok" || m["servername"] != "DoubleDutch" {
		t.Fatalf("answer %v", m)
	}
	locks := m["locks"].([]any)
	if len(locks) != 2 {
		t.Fatalf("locks %v", locks)
	}
	want := map[string]float64{"two-weeks": 1209600, "short": 20}
	for _, l := range locks {
		e := l.(map[string]any)
		name := e["lockname"].(string)
		if e["sessiontoken"] != "" {
			t.Errorf("%s: session token listed: %v", name, e["sessiontoken"])
		}
		if r := e["remaining"].(float64); math.Abs(r-want[name]) > 2 {
			t.Errorf("%s: remaining %v, want about %v", name, r, want[name])
		}
		if ft, _ := e["fencingtoken"].(float64); ft < 1 {
			t.Errorf("%s: fencingtoken %v", name, e["fencingtoken"])
		}
	}
}

func TestStatusEmptyListIsArray(t *testing.T) {
	h := newHarness(t)
	rec := h.do(req{method: http.MethodGet, target: "/status", bearer: testKey})
	if m := wantOK(t, rec); m["locks"] == nil {
		t.Fatalf("locks must be [] not null: %s", rec.Body.String())
	}
}

func TestStatusAuthFailureHasNoLocks(t *testing.T) {
	h := newHarness(t)
	h.getlock("lockname=x")
	for _, target := range []string{"/status", "/status?auth=wrong", "/status?auth="} {
		rec := h.do(req{method: http.MethodGet, target: target})
		m := wantError(t, rec, http.StatusUnauthorized, "unauthorized")
		if _, ok := m["locks"]; ok {
			t.Fatalf("%s: answer lists locks: %v", target, m)
		}
		if rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate header", target)
		}
	}
}

// The original's test: a thousand concurrent clients each get their own
// lock, and /status lists them all (more than one page here).
func TestThousandConcurrentClients(t *testing.T) {
	h := newHarness(t)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec := h.do(req{method: http.MethodGet, target: fmt.Sprintf("/getlock?auth=%s&lockname=client-%d", testKey, i)})
			if rec.Code != http.StatusOK || !contains(rec.Body.String(), `"lockacquired":true`) {
				errs <- rec.Body.String()
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a client did not get its lock: %s", e)
	}
	m := wantOK(t, h.do(req{method: http.MethodGet, target: "/status?auth=" + testKey}))
	if got := len(m["locks"].([]any)); got != n {
		t.Fatalf("/status lists %d locks, want %d", got, n)
	}
}

// The original's test: a 1 s lock is granted to a waiter that asks with
// timeout=1 right after, because it expires within the waiter's timeout.
func TestWaiterWithTimeoutOneGetsExpiringOneSecondLock(t *testing.T) {
	h := newHarness(t)
	h.getlock("lockname=job&lifetime=1")
	start := time.Now()
	m := h.getlock("lockname=job&timeout=1")
	t.Logf("waited %v", time.Since(start))
	if m["lockacquired"] != true {
		t.Fatalf("waiter was turned away: %v", m)
	}
}

func TestFractionalTimeoutIsHonoured(t *testing.T) {
	h := newHarness(t)
	h.getlock("lockname=job&lifetime=60")
	start := time.Now()
	m := h.getlock("lockname=job&timeout=0.2")
	el := time.Since(start)
	if m["lockacquired"] != false {
		t.Fatalf("answer %v", m)
	}
	if el < 200*time.Millisecond || el > 3*time.Second {
		t.Fatalf("timeout=0.2 waited %v", el)
	}
}

func TestLegacyValidation(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxNameLength = 16 })
	bad := []string{
		"", "lockname=", "timeout=1", "lockname=a&timeout=-1", "lockname=a&timeout=NaN",
		"lockname=a&timeout=Inf", "lockname=a&timeout=+Inf", "lockname=a&timeout=abc",
		"lockname=a&timeout=", "lockname=a&lifetime=0", "lockname=a&lifetime=-5",
		"lockname=a&lifetime=nan", "lockname=a&lifetime=1e400", "lockname=a&lifetime=0.0001",
		"lockname=a&lifetime=2592001", "lockname=a&timeout=601", "lockname=a&lockname=b",
		"lockname=%zz", "lockname=a%00b", "lockname=a%0Ab", "lockname=%FF%FE",
		"lockname=12345678901234567", "lockname=a;b", "lockname=a&timeout=1&timeout=2",
	}
	for _, q := range bad {
		rec := h.do(req{method: http.MethodGet, target: "/getlock?" + q, bearer: testKey})
		m := wantError(t, rec, http.StatusBadRequest, "bad_request")
		if m["lockacquired"] != false {
			t.Errorf("%q: %v", q, m)
		}
	}
	for _, q := range []string{"", "lockname=a", "token=" + fmt.Sprintf("%032x", 1), "lockname=a&token=short",
		"lockname=a&token=" + fmt.Sprintf("%031xg", 1), "lockname=&token=" + fmt.Sprintf("%032x", 1)} {
		rec := h.do(req{method: http.MethodDelete, target: "/releaselock?" + q})
		if m := wantError(t, rec, http.StatusBadRequest, "bad_request"); m["lockreleased"] != false {
			t.Errorf("%q: %v", q, m)
		}
	}
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals made for bad requests", n)
	}
	if h.f.m.Len() != 0 {
		t.Fatal("a bad request changed state")
	}
}

func TestLegacyAcceptsUnicodeAndNumericNames(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"123", "caf%C3%A9", "a+b", "jobs%2Fnightly", "with%20space"} {
		if m := h.getlock("lockname=" + name); m["lockacquired"] != true {
			t.Fatalf("%s: %v", name, m)
		}
	}
	if _, held := h.f.m.Get("jobs/nightly"); !held {
		t.Fatal("escaped name not decoded")
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && regexp.MustCompile(regexp.QuoteMeta(sub)).MatchString(s)
}

var _ = fsm.Granted
