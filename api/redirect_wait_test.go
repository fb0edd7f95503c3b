package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

var selfLeader = cluster.LeaderInfo{ID: fakeSelf, APIURL: "http://n1.test:8001", IsSelf: true}

// waitingForLeader waits until n requests wait for a leader.
func (h *harness) waitingForLeader(n int32) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("%d requests waiting for a leader", n), func() bool { return h.s.leaderWaiters.Load() == n })
}

// A request sent while no leader exists is served once one is elected:
// here when this node wins, on both APIs, including an acquire with
// timeout=0 (a busy lock's timeout is not a leader's).
func TestRequestWaitsForALeaderThenIsServed(t *testing.T) {
	h := newHarness(t)
	h.f.setLeader(cluster.LeaderInfo{})
	legacy := async(func() *httptest.ResponseRecorder { return h.get("/getlock?lockname=a&timeout=0") })
	v1 := async(func() *httptest.ResponseRecorder { return h.v1(http.MethodPost, "/v1/locks/b", `{}`) })
	status := async(func() *httptest.ResponseRecorder { return h.get("/status") })
	h.waitingForLeader(3)
	h.f.setLeader(selfLeader)
	if m := wantOK(t, await(t, legacy)); m["lockacquired"] != true {
		t.Fatalf("getlock %v", m)
	}
	wantOK(t, await(t, v1))
	if m := wantOK(t, await(t, status)); m["locks"] == nil {
		t.Fatalf("status %v", m)
	}
}

// When another node wins, the waiting request is redirected there, and
// the time it waited is taken off its lock wait.
func TestRequestWaitsForALeaderThenIsRedirected(t *testing.T) {
	h := newHarness(t)
	h.f.setLeader(cluster.LeaderInfo{ID: "n2"}) // known, URL not announced yet
	rec := async(func() *httptest.ResponseRecorder {
		return h.get("/getlock?lockname=a&auth=" + testKey + "&timeout=2")
	})
	h.waitingForLeader(1)
	<-time.After(200 * time.Millisecond) // the leader wait to be charged: time must pass
	h.f.setLeader(otherLeader)
	r := await(t, rec)
	loc, err := url.Parse(r.Header().Get("Location"))
	if r.Code != http.StatusTemporaryRedirect || err != nil || loc.Host != "n2.test:8443" {
		t.Fatalf("%d %v", r.Code, r.Header())
	}
	left, err := strconv.ParseFloat(loc.Query().Get("timeout"), 64)
	if err != nil || left > 1.8 || left < 0.5 || loc.Query().Get("auth") != testKey {
		t.Fatalf("carried as %s", loc)
	}
	if h.f.proposals.Load() != 0 {
		t.Fatal("a follower proposed")
	}
}

// carried is an error of the kind the proposing and waiting paths return
// when leadership is lost: a cluster outcome plus how to retry.
type carried struct {
	err  error
	id   string
	left time.Duration
}

func (c carried) Error() string                { return c.err.Error() }
func (c carried) Unwrap() error                { return c.err }
func (c carried) RetryRequestID() string       { return c.id }
func (c carried) RemainingWait() time.Duration { return c.left }

// A proposal that was applied but reported unknown (leadership lost after
// the commit) is carried to the next leader with its request id; the
// retry there is answered with the same grant: one grant, one fencing
// token. Here the next leader is this node again (a relative redirect).
func TestUnknownOutcomeCarriedWithRequestIDGrantsOnce(t *testing.T) {
	h := newHarness(t)
	var once bool
	h.f.setOnPropose(func(ctx ctxT, c cmdT) error {
		if once {
			return nil
		}
		once = true
		h.f.apply(c) // committed, but the answer is lost
		return carried{err: fmt.Errorf("%w: %w", cluster.ErrUnknownOutcome, cluster.ErrLeadershipLost), id: c.RequestID, left: 1500 * time.Millisecond}
	})
	body := `{"request_id":"rid-0123456789abcdef","lifetime":30,"wait":1.5}`
	rec := h.v1(http.MethodPost, "/v1/locks/x", body)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusTemporaryRedirect || err != nil || loc.Path != "/v1/locks/x" || loc.Query().Get("request_id") != "rid-0123456789abcdef" || !carriesWait(loc, 1.5) {
		t.Fatalf("first answer %d, Location %q: %s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	m := wantOK(t, h.v1(http.MethodPost, loc.String(), body)) // what a client following the 307 sends
	if owners := h.f.grantedOwners(); len(owners) != 1 {
		t.Fatalf("%d grants after the carried retry, want 1", len(owners))
	}
	lock, _, _, _ := h.f.StaleReadLock("x")
	if m["fencing_token"] != float64(lock.Fence) {
		t.Fatalf("retry answered fence %v, the lock holds %d", m["fencing_token"], lock.Fence)
	}
}

// Without a request id to dedup on, an unknown outcome is never retried
// for the client: it stays 504.
func TestUnknownOutcomeWithoutCarrierIs504(t *testing.T) {
	h := newHarness(t)
	h.f.setOnPropose(func(ctx ctxT, c cmdT) error {
		return fmt.Errorf("%w: leadership lost", cluster.ErrUnknownOutcome)
	})
	wantError(t, h.v1(http.MethodPost, "/v1/locks/x", `{}`), http.StatusGatewayTimeout, "unknown_outcome")
}

// A request that waits past the bound gets 503 with Retry-After, and a
// client that leaves while waiting stops the wait.
func TestLeaderWaitIsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LeaderWait = 100 * time.Millisecond })
	h.f.setLeader(cluster.LeaderInfo{})
	start := time.Now()
	rec := h.get("/getlock?lockname=a")
	wantError(t, rec, http.StatusServiceUnavailable, "no_leader")
	if el := time.Since(start); el < 100*time.Millisecond || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("answered after %v with %v", el, rec.Header())
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := async(func() *httptest.ResponseRecorder {
		return h.do(req{method: http.MethodGet, target: "/status", bearer: testKey, ctx: ctx})
	})
	h.waitingForLeader(1)
	cancel()
	if rec := await(t, gone); rec.Code != 499 {
		t.Fatalf("client gone: %d", rec.Code)
	}
	h.waitingForLeader(0)
}

// carriesWait reports whether loc's wait= is more than 0 and at most max.
func carriesWait(loc *url.URL, max float64) bool {
	left, err := strconv.ParseFloat(loc.Query().Get("wait"), 64)
	return err == nil && left > 0 && left <= max
}
