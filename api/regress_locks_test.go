package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// Regression tests for issue 8's findings on the waiting and proposing
// path. Each failed against the code before the fix.

// Item 2: a request with a request id proposed at once while the lock was
// held; when the holder's release applied between that check and the
// proposal, the newcomer was granted ahead of the queued waiter.
func TestRequestIDDoesNotJumpTheQueue(t *testing.T) {
	h := newHarness(t)
	holder := h.acquire("q", `{"owner":"holder"}`)
	w := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"W"}`)
	h.f.setOnPropose(func(_ context.Context, c fsm.Command) error {
		if c.Kind == fsm.KindAcquire && c.Owner == "N" {
			// The holder's release lands just before the newcomer's acquire.
			if _, held := h.f.m.Get("q"); held {
				h.f.apply(fsm.Command{Kind: fsm.KindRelease, Name: "q", Token: mustToken(t, holder)})
			}
		}
		return nil
	})
	n := async(func() *httptest.ResponseRecorder {
		return h.v1(http.MethodPost, "/v1/locks/q", `{"wait":20,"owner":"N","request_id":"newcomer-0123456789"}`)
	})
	eventually(t, "the newcomer to queue or be served", func() bool {
		return h.s.locks.Waiters("q") == 2 || len(h.f.grantedOwners()) > 1
	})
	if _, held := h.f.m.Get("q"); held && h.s.locks.Waiters("q") == 2 {
		h.release("q", holder)
	}
	first := wantOK(t, await(t, w))
	h.release("q", first["session_token"].(string))
	wantOK(t, await(t, n))
	if got := h.f.grantedOwners(); !slices.Equal(got, []string{"holder", "W", "N"}) {
		t.Fatalf("grant order %v, want holder, W, N", got)
	}
}

// Item 6: when the lock just granted to the head waiter was freed before
// that waiter recorded its grant, the freed event was ignored and the next
// waiter was served only at its own timeout.
func TestFreedBeforeGrantRecordedWakesNextWaiter(t *testing.T) {
	h := newHarness(t)
	holder := h.acquire("q", "")
	w1 := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"W1","lifetime":0.001}`)
	w2 := h.waitFor(context.Background(), "q", `{"wait":20,"owner":"W2"}`)
	h.f.stateMu.Lock()
	h.f.afterApply = func(c fsm.Command, r fsm.Result) {
		if c.Owner == "W1" && r.Outcome == fsm.Granted {
			// W1's goroutine is descheduled while its 1 ms grant expires.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, held := h.f.m.Get("q"); !held {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	h.f.stateMu.Unlock()
	h.release("q", holder)
	wantOK(t, await(t, w1))
	select {
	case rec := <-w2:
		wantOK(t, rec)
	case <-time.After(10 * time.Second):
		t.Fatal("the second waiter missed its wakeup: the free lock waits for its 20 s timeout")
	}
}

// Item 5: a release with a wrong token (the original API needs no key for
// it) was proposed, costing a replicated, fsynced entry. It is refused
// from the leader's applied state.
func TestReleaseThatCannotSucceedIsNotProposed(t *testing.T) {
	h := newHarness(t)
	tok := h.acquire("q", "")
	wrong := "0123456789abcdef0123456789abcdef"
	before := h.f.proposals.Load()
	rec := h.do(req{method: http.MethodDelete, target: "/releaselock?lockname=q&token=" + wrong})
	if m := wantError(t, rec, http.StatusBadRequest, "not_held"); m["lockreleased"] != false {
		t.Fatalf("legacy answer %v", m)
	}
	wantError(t, h.do(req{method: http.MethodDelete, target: "/releaselock?lockname=free&token=" + wrong}), http.StatusBadRequest, "not_held")
	wantError(t, h.v1(http.MethodDelete, "/v1/locks/q", `{"token":"`+wrong+`"}`), http.StatusConflict, "not_held")
	wantError(t, h.v1(http.MethodPost, "/v1/locks/q/refresh", `{"token":"`+wrong+`"}`), http.StatusConflict, "not_held")
	if n := h.f.proposals.Load() - before; n != 0 {
		t.Fatalf("%d proposals for releases that could not succeed", n)
	}
	// The right token is still proposed, and its repeat is answered from
	// the dedup table without proposing.
	body := `{"token":"` + tok + `","request_id":"release-0123456789"}`
	wantOK(t, h.v1(http.MethodDelete, "/v1/locks/q", body))
	n := h.f.proposals.Load()
	if m := wantOK(t, h.v1(http.MethodDelete, "/v1/locks/q", body)); m["released"] != true || h.f.proposals.Load() != n {
		t.Fatalf("repeated release answered %v", m)
	}
}

// Item 11: a repeated request id acquired a second time (the waiting path
// retried under derived ids "id#n"). A repeat never acts twice: it is told
// what happened to the first.
func TestRepeatedRequestIDNeverAcquiresTwice(t *testing.T) {
	h := newHarness(t)
	body := `{"request_id":"rid-A-0123456789ab","wait":1}`
	first := wantOK(t, h.v1(http.MethodPost, "/v1/locks/q", body))
	h.release("q", first["session_token"].(string))
	m := wantError(t, h.v1(http.MethodPost, "/v1/locks/q", body), http.StatusConflict, "grant_ended")
	if _, held := h.f.m.Get("q"); held || len(h.f.grantedOwners()) != 1 {
		t.Fatalf("the repeat acquired again: %v, grants %v", m, h.f.grantedOwners())
	}
	// Every printable id is allowed, '#' included.
	wantOK(t, h.v1(http.MethodPost, "/v1/locks/q", `{"request_id":"job#1-0123456789ab"}`))
}

// "Request ids act as secrets": a repeat is answered with the first
// answer, session token included, so an id must be unguessable; short
// ids are refused.
func TestShortRequestIDsAreRefused(t *testing.T) {
	h := newHarness(t)
	wantError(t, h.v1(http.MethodPost, "/v1/locks/q", `{"request_id":"rid-A"}`), http.StatusBadRequest, "bad_request")
	wantError(t, h.do(req{method: http.MethodGet, target: "/getlock?lockname=q&request_id=1", bearer: testKey}), http.StatusBadRequest, "bad_request")
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals for refused ids", n)
	}
}

func mustToken(t *testing.T, s string) fsm.Token {
	t.Helper()
	tok, err := fsm.ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Issue 10 item 5: every proposal's context carries Config.ProposeTimeout
// (the cluster now honours it: cluster's TestProposalHonoursContext), and
// a proposal still in flight when it passes is answered unknown_outcome.
func TestProposeTimeoutBoundsProposals(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ProposeTimeout = 50 * time.Millisecond })
	h.f.setOnPropose(func(ctx context.Context, _ fsm.Command) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("proposed without a deadline")
		}
		<-ctx.Done() // the commit never comes
		return fmt.Errorf("%w: %w", cluster.ErrUnknownOutcome, ctx.Err())
	})
	rec := h.v1(http.MethodPost, "/v1/locks/q", `{"request_id":"timeout-0123456789"}`)
	wantError(t, rec, http.StatusGatewayTimeout, "unknown_outcome")
}

// A grant whose client went away is released, but the client may retry
// under the same request id first: the retry must not be told "granted"
// for a grant that is then released behind its back (found while moving
// the waiting layer; the same race existed before). The retry's claim and
// the abandoning release are ordered at the leader.
func TestRetryClaimingAnAbandonedGrantKeepsIt(t *testing.T) {
	h := newHarness(t)
	ctxA, cancelA := context.WithCancel(context.Background())
	const body = `{"owner":"A","request_id":"claim-0123456789ab"}`
	var retry *httptest.ResponseRecorder
	h.f.stateMu.Lock()
	h.f.afterApply = func(c fsm.Command, r fsm.Result) {
		if c.Owner == "A" && r.Outcome == fsm.Granted && !r.Duplicate && retry == nil {
			cancelA()                                          // the client gives up on its first attempt ...
			retry = h.v1(http.MethodPost, "/v1/locks/q", body) // ... and retries at once
		}
	}
	h.f.stateMu.Unlock()
	first := h.do(req{method: http.MethodPost, target: "/v1/locks/q", body: body, bearer: testKey, ctx: ctxA})
	if first.Code == http.StatusOK || retry == nil {
		t.Fatalf("test did not exercise an abandoned first grant: %d", first.Code)
	}
	if retry.Code != http.StatusOK {
		return // told the grant ended: nothing held for it, nothing to check
	}
	m := wantOK(t, retry)
	if l, held := h.f.m.Get("q"); !held || l.Token.String() != m["session_token"] {
		t.Fatalf("the retry was told it holds q (%v), but the server released it", m)
	}
}
