package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// waitFor starts a v1 acquire that may wait, and returns once it is queued.
func (h *harness) waitFor(ctx context.Context, name, body string) <-chan *httptest.ResponseRecorder {
	h.t.Helper()
	before := h.s.locks.Waiters(name)
	ch := async(func() *httptest.ResponseRecorder {
		return h.do(req{method: http.MethodPost, target: "/v1/locks/" + name, body: body, bearer: testKey, ctx: ctx})
	})
	eventually(h.t, "the request to queue", func() bool { return h.s.locks.Waiters(name) == before+1 })
	return ch
}

func (h *harness) release(name, tok string) {
	h.t.Helper()
	wantOK(h.t, h.v1(http.MethodDelete, "/v1/locks/"+name, `{"token":"`+tok+`"}`))
}

func TestTenWaitersAreServedInFIFOOrder(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", `{"owner":"holder"}`)
	var chans []<-chan *httptest.ResponseRecorder
	for i := 0; i < 10; i++ {
		chans = append(chans, h.waitFor(context.Background(), "q", fmt.Sprintf(`{"wait":20,"owner":"w%d"}`, i)))
	}
	if m := wantOK(t, h.v1(http.MethodGet, "/v1/locks/q", "")); m["waiters"] != 10.0 {
		t.Fatalf("lock info %v", m)
	}
	var handoffs []time.Duration
	for i, ch := range chans {
		start := time.Now()
		h.release("q", tok)
		m := wantOK(t, await(t, ch))
		handoffs = append(handoffs, time.Since(start))
		if m["owner"] != fmt.Sprintf("w%d", i) {
			t.Fatalf("grant %d went to %v", i, m["owner"])
		}
		tok = m["session_token"].(string)
	}
	want := []string{"holder", "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"}
	if got := h.f.grantedOwners(); !slices.Equal(got, want) {
		t.Fatalf("grants %v", got)
	}
	sort.Slice(handoffs, func(i, j int) bool { return handoffs[i] < handoffs[j] })
	t.Logf("release-to-grant over the fake cluster: p50 %v, max %v", handoffs[5], handoffs[9])
}

func TestNewcomerWithoutWaitDoesNotOvertakeWaiters(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	w := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"waiter"}`)
	n := h.f.proposals.Load()
	wantError(t, h.v1(http.MethodPost, "/v1/locks/q", `{"owner":"newcomer"}`), http.StatusConflict, "busy")
	if m := h.getlock("lockname=q"); m["lockacquired"] != false {
		t.Fatalf("legacy newcomer %v", m)
	}
	if h.f.proposals.Load() != n {
		t.Fatal("a newcomer proposed while others wait")
	}
	h.release("q", tok)
	if m := wantOK(t, await(t, w)); m["owner"] != "waiter" {
		t.Fatalf("grant %v", m)
	}
}

func TestDisconnectedWaiterIsNeverGranted(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	ctxA, cancelA := context.WithCancel(context.Background())
	a := h.waitFor(ctxA, "q", `{"wait":20,"owner":"A"}`)
	b := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"B"}`)
	cancelA()
	if rec := await(t, a); rec.Code == http.StatusOK {
		t.Fatalf("a gone client was answered %s", rec.Body.String())
	}
	h.release("q", tok)
	if m := wantOK(t, await(t, b)); m["owner"] != "B" {
		t.Fatalf("grant %v", m)
	}
	if slices.Contains(h.f.grantedOwners(), "A") {
		t.Fatal("the disconnected waiter was granted")
	}
}

// A waiter whose client leaves at the moment its turn comes (before its
// goroutine notices) is skipped by the handoff itself.
func TestDisconnectedHeadWaiterIsSkippedAtHandoff(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	ctxA, cancelA := context.WithCancel(context.Background())
	a := h.waitFor(ctxA, "q", `{"wait":20,"owner":"A"}`)
	cancelA()
	h.release("q", tok)
	await(t, a)
	eventually(t, "the queue to empty", func() bool { return h.s.locks.Size() == 0 })
	if _, held := h.f.m.Get("q"); held || slices.Contains(h.f.grantedOwners(), "A") {
		t.Fatal("a lock was granted to a client that left")
	}
}

// If the client leaves after its grant was proposed, the grant is released
// as soon as it commits: no lock is held for nobody.
func TestGrantWhoseClientLeftIsReleased(t *testing.T) {
	for _, waiting := range []bool{true, false} {
		h := newHarness(t)
		ctxA, cancelA := context.WithCancel(context.Background())
		h.f.setOnPropose(func(_ context.Context, c fsm.Command) error {
			if _, held := h.f.m.Get("q"); c.Kind == fsm.KindAcquire && c.Owner == "A" && !held {
				cancelA() // the client hangs up while its granting proposal is in flight
			}
			return nil
		})
		var a <-chan *httptest.ResponseRecorder
		if waiting {
			tok := h.acquire("q", "")
			a = h.waitFor(ctxA, "q", `{"wait":20,"owner":"A"}`)
			h.release("q", tok)
		} else {
			a = async(func() *httptest.ResponseRecorder {
				return h.do(req{method: http.MethodPost, target: "/v1/locks/q", body: `{"owner":"A"}`, bearer: testKey, ctx: ctxA})
			})
		}
		await(t, a)
		if !slices.Contains(h.f.grantedOwners(), "A") {
			t.Fatal("test did not exercise a grant")
		}
		eventually(t, "the abandoned grant to be released", func() bool { _, held := h.f.m.Get("q"); return !held })
	}
}

func TestWaiterThatLosesARaceKeepsItsPlace(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	intruder := make(chan fsm.Lock, 1)
	var once sync.Once
	h.f.setOnPropose(func(_ context.Context, c fsm.Command) error {
		if _, held := h.f.m.Get("q"); c.Kind == fsm.KindAcquire && c.Owner == "W" && !held {
			once.Do(func() {
				// Someone who saw no queue gets in just before W's acquire.
				res := h.f.apply(fsm.Command{Kind: fsm.KindAcquire, Name: "q", Token: fsm.Token{1}, Lifetime: 60000, Owner: "intruder"})
				intruder <- res.Lock
			})
		}
		return nil
	})
	w := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"W"}`)
	h.release("q", tok)
	lock := <-intruder
	eventually(t, "W to be queued again", func() bool { return h.s.locks.Waiters("q") == 1 })
	h.release("q", lock.Token.String())
	if m := wantOK(t, await(t, w)); m["owner"] != "W" {
		t.Fatalf("grant %v", m)
	}
}

func TestWaiterTimesOutOnALongLock(t *testing.T) {
	h := newHarness(t)
	h.acquire("q", `{"lifetime":60,"owner":"holder"}`)
	start := time.Now()
	m := wantError(t, h.v1(http.MethodPost, "/v1/locks/q", `{"wait":0.1}`), http.StatusConflict, "busy")
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("gave up after %v", el)
	}
	if m["error"].(map[string]any)["lock"].(map[string]any)["owner"] != "holder" {
		t.Fatalf("busy %v", m)
	}
	if h.s.locks.Size() != 0 {
		t.Fatal("waiter left behind")
	}
}

// A waiter whose leader steps down has nothing in flight: it is carried
// to the next leader with a 307 that keeps what is left of its wait.
func TestLeadershipLossCarriesWaiters(t *testing.T) {
	h := newHarness(t)
	h.acquire("q", "")
	v1 := h.waitFor(context.Background(), "q", `{"wait":20}`)
	before := h.s.locks.Waiters("q")
	legacy := async(func() *httptest.ResponseRecorder {
		return h.do(req{method: http.MethodGet, target: "/getlock?lockname=q&timeout=20", bearer: testKey})
	})
	eventually(t, "legacy waiter", func() bool { return h.s.locks.Waiters("q") == before+1 })
	h.f.setLeader(otherLeader)
	// A waiter whose leader stepped down is carried to the new leader
	// (issue 10 item 2) with what is left of its wait: nothing of it was
	// applied here.
	for _, c := range []struct {
		rec     *httptest.ResponseRecorder
		waitKey string
	}{{await(t, v1), "wait"}, {await(t, legacy), "timeout"}} {
		loc, err := url.Parse(c.rec.Header().Get("Location"))
		if c.rec.Code != http.StatusTemporaryRedirect || err != nil || loc.Host != "n2.test:8443" {
			t.Fatalf("waiter at a deposed leader answered %d %v", c.rec.Code, c.rec.Header())
		}
		if left, err := strconv.ParseFloat(loc.Query().Get(c.waitKey), 64); err != nil || left > 20 || left < 10 {
			t.Fatalf("waiter carried as %s", loc)
		}
	}
	if h.s.locks.Size() != 0 {
		t.Fatal("waiters left behind")
	}
	// Leading again: waiting works again.
	h.f.setLeader(cluster.LeaderInfo{ID: fakeSelf, APIURL: "http://n1.test:8001", IsSelf: true})
	h.waitFor(context.Background(), "q", `{"wait":20}`)
}

func TestCloseEndsWaiters(t *testing.T) {
	h := newHarness(t)
	h.acquire("q", "")
	w := h.waitFor(context.Background(), "q", `{"wait":20}`)
	h.s.Close()
	wantError(t, await(t, w), http.StatusServiceUnavailable, "unavailable")
	wantError(t, h.v1(http.MethodPost, "/v1/locks/q", `{"wait":1}`), http.StatusServiceUnavailable, "unavailable")
}

func TestWaitersAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxWaiters = 3; c.MaxWaitersPerName = 2 })
	h.acquire("q", "")
	h.acquire("r", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.waitFor(ctx, "q", `{"wait":20}`)
	h.waitFor(ctx, "q", `{"wait":20}`)
	rec := h.v1(http.MethodPost, "/v1/locks/q", `{"wait":20}`)
	wantError(t, rec, http.StatusTooManyRequests, "too_many_waiters")
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	h.waitFor(ctx, "r", `{"wait":20}`)
	wantError(t, h.v1(http.MethodPost, "/v1/locks/r", `{"wait":20}`), http.StatusTooManyRequests, "too_many_waiters")
	cancel()
	eventually(t, "waiters to leave", func() bool { return h.s.locks.Size() == 0 })
}

// A retried waiting acquire (its first answer was lost) finds the grant
// its first try got while waiting, although that try's first proposal was
// refused Busy under the same request id.
func TestRetriedWaitingAcquireFindsItsGrant(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	w := h.waitFor(context.Background(), "q", `{"wait":20,"request_id":"job-7-0123456789ab"}`)
	h.release("q", tok)
	first := wantOK(t, await(t, w))
	again := wantOK(t, h.v1(http.MethodPost, "/v1/locks/q", `{"wait":20,"request_id":"job-7-0123456789ab"}`))
	if again["session_token"] != first["session_token"] || again["duplicate"] != true {
		t.Fatalf("retry answered %v, first %v", again, first)
	}
	if n := len(h.f.grantedOwners()); n != 2 {
		t.Fatalf("%d grants, want 2 (holder, job-7)", n)
	}
}

// The same while others wait behind the grant.
func TestRetriedAcquireFindsItsGrantDespiteQueue(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	a := h.waitFor(context.Background(), "q", `{"wait":20,"request_id":"job-8-0123456789ab"}`)
	b := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"B"}`)
	h.release("q", tok)
	first := wantOK(t, await(t, a))
	for _, wait := range []string{"0", "20"} {
		again := wantOK(t, h.v1(http.MethodPost, "/v1/locks/q", `{"wait":`+wait+`,"request_id":"job-8-0123456789ab"}`))
		if again["session_token"] != first["session_token"] {
			t.Fatalf("retry answered %v, first %v", again, first)
		}
	}
	// A fresh id queues behind B and does not overtake it.
	c := h.waitFor(context.Background(), "q", `{"wait":20,"request_id":"job-9-0123456789ab","owner":"C"}`)
	h.release("q", first["session_token"].(string))
	mb := wantOK(t, await(t, b))
	if mb["owner"] != "B" {
		t.Fatalf("grant %v", mb)
	}
	h.release("q", mb["session_token"].(string))
	if m := wantOK(t, await(t, c)); m["owner"] != "C" {
		t.Fatalf("grant %v", m)
	}
}
