package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWaiterCarriedAcrossLeaderStepDown: a /getlock waiting at the leader
// when it hands leadership over (a graceful shutdown) is carried by a 307
// to the new leader, where a client that follows redirects gets the lock
// once the holder's lifetime ends: one grant, with a fencing token above
// the holder's, and nobody else holding it.
func TestWaiterCarriedAcrossLeaderStepDown(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.leader()
	base := ec.urls[lead]
	code, held, _ := ec.do(ec.follow, http.MethodPost, base+"/v1/locks/carried", strings.NewReader(`{"lifetime":2,"owner":"holder"}`),
		"Authorization", "Bearer "+testKey)
	if code != http.StatusOK {
		t.Fatalf("holder: %d %v", code, held)
	}
	holderFence := held["fencing_token"].(float64)
	type answer struct {
		code int
		body map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		c, b, _ := ec.do(ec.follow, http.MethodGet, base+"/getlock?lockname=carried&timeout=15&auth="+testKey, nil)
		got <- answer{c, b}
	}()
	waitUntil(t, 10*time.Second, "the waiter to queue at the leader", func() bool {
		_, info, _ := ec.do(ec.client, http.MethodGet, base+"/v1/locks/carried", nil, "Authorization", "Bearer "+testKey)
		w, _ := info["waiters"].(float64)
		return w == 1
	})
	if err := ec.nodes[lead].shutdown(); err != nil {
		t.Logf("shutdown of the old leader: %v", err)
	}
	var a answer
	select {
	case a = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the carried waiter got no answer")
	}
	fence, _ := a.body["fencingtoken"].(float64)
	if a.code != http.StatusOK || a.body["lockacquired"] != true || fence <= holderFence {
		t.Fatalf("carried waiter: %d %v (holder's fence %v)", a.code, a.body, holderFence)
	}
	// The lock is held by the carried waiter's grant and nobody else's.
	var now map[string]any
	for i, u := range ec.urls {
		if i == lead {
			continue
		}
		c, b, _ := ec.do(ec.follow, http.MethodGet, u+"/v1/locks/carried", nil, "Authorization", "Bearer "+testKey)
		if c == http.StatusOK {
			now = b
			break
		}
	}
	if now == nil || now["fencing_token"] != fence {
		t.Fatalf("lock now %v, want the carried waiter's fence %v", now, fence)
	}
}

// TestWaitersCarriedAcrossLeadershipTransfer: two waiters queued at the
// leader, one on /getlock (Go's http.Client follows the 307 with the same
// method) and one on POST /v1/locks (the body is resent), are carried by
// a 307 to the node that POST /v1/cluster/leader hands leadership to.
// Nothing is granted while the holder holds; after it releases, each
// waiter gets exactly one grant, at the new leader, one after the other:
// the lock holds each answered fence in turn, the v1 waiter's request id
// repeated is answered as a duplicate of its one grant, and once both are
// released nothing holds the lock.
func TestWaitersCarriedAcrossLeadershipTransfer(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.leader()
	base := ec.urls[lead]
	code, held, _ := ec.do(ec.follow, http.MethodPost, base+"/v1/locks/moved", strings.NewReader(`{"lifetime":60,"owner":"holder"}`), bearer()...)
	if code != http.StatusOK {
		t.Fatalf("holder: %d %v", code, held)
	}
	legacy := ec.sendFollowing("legacy waiter", http.MethodGet, base+"/getlock?lockname=moved&timeout=40&lifetime=60&auth="+testKey, "")
	waitUntil(t, 10*time.Second, "the legacy waiter to queue at the leader", func() bool {
		_, m := ec.lockAt(base, "moved")
		return m["waiters"] == float64(1)
	})
	const rid = "carried-by-transfer-0001"
	v1Body := `{"lifetime":60,"wait":40,"owner":"v1-waiter","request_id":"` + rid + `"}`
	v1 := ec.sendFollowing("v1 waiter", http.MethodPost, base+"/v1/locks/moved", v1Body, bearer()...)
	waitUntil(t, 10*time.Second, "both waiters to queue at the leader", func() bool {
		_, m := ec.lockAt(base, "moved")
		return m["waiters"] == float64(2)
	})

	target := (lead + 1) % 3
	admin := []string{"Authorization", "Bearer " + testAdminKey}
	st, m, _ := ec.do(ec.follow, http.MethodPost, base+"/v1/cluster/leader", strings.NewReader(`{"target":"`+ec.nodes[target].cfg.NodeID+`"}`), admin...)
	if st != http.StatusOK {
		t.Fatalf("transfer: %d %v", st, m)
	}
	if got := ec.leader(); got != target {
		t.Fatalf("leader is node %d, want %d", got, target)
	}
	newBase := ec.urls[target]
	// Both waiters are carried: they wait at the new leader, and neither
	// was granted anything by the old one (the holder still holds).
	waitUntil(t, 15*time.Second, "both waiters to queue at the new leader", func() bool {
		_, m := ec.lockAt(newBase, "moved")
		return m["waiters"] == float64(2) && m["fencing_token"] == held["fencing_token"]
	})
	noAnswerYet(t, legacy, "the legacy waiter")
	noAnswerYet(t, v1, "the v1 waiter")

	holderFence := held["fencing_token"].(float64)
	st, m, _ = ec.do(ec.follow, http.MethodDelete, newBase+"/v1/locks/moved", strings.NewReader(`{"token":"`+held["session_token"].(string)+`"}`), bearer()...)
	if st != http.StatusOK {
		t.Fatalf("holder's release: %d %v", st, m)
	}
	// The carried waiters are served one at a time, in the order in which
	// they reached the new leader (each re-queued on its own redirect).
	first, second := awaitFirst(t, legacy, v1)
	fence1 := grantFence(t, first, holderFence, newBase)
	_, now := ec.lockAt(newBase, "moved")
	if now["fencing_token"] != fence1 || now["waiters"] != float64(1) {
		t.Fatalf("after the first grant (fence %v) the lock is %v", fence1, now)
	}
	noAnswerYet(t, second.ch, second.label)
	releaseGrant(t, ec, newBase, first)
	sa := await(t, second.ch, 20*time.Second)
	fence2 := grantFence(t, sa, fence1, newBase)
	_, now = ec.lockAt(newBase, "moved")
	if now["fencing_token"] != fence2 || now["waiters"] != float64(0) {
		t.Fatalf("after the second grant (fence %v) the lock is %v", fence2, now)
	}
	// The v1 waiter's one grant, asked again under its request id.
	code, dup, _ := ec.do(ec.follow, http.MethodPost, newBase+"/v1/locks/moved", strings.NewReader(v1Body), bearer()...)
	v1Fence := fence1
	if sa.label == "v1 waiter" {
		v1Fence = fence2
	}
	if first.label == "v1 waiter" {
		// Released already: the repeat reports the grant ended, never a new one.
		if code == http.StatusOK {
			t.Fatalf("repeat of the released v1 grant was granted again: %v", dup)
		}
	} else if code != http.StatusOK || dup["duplicate"] != true || dup["fencing_token"] != v1Fence {
		t.Fatalf("repeat of the v1 waiter's request: %d %v, want a duplicate of fence %v", code, dup, v1Fence)
	}
	releaseGrant(t, ec, newBase, sa)
	waitUntil(t, 10*time.Second, "the lock to be free", func() bool {
		c, _ := ec.lockAt(newBase, "moved")
		return c == http.StatusNotFound
	})
}

// pending is a waiter not yet answered.
type pending struct {
	label string
	ch    <-chan carryAnswer
}

// awaitFirst returns the first of two waiters to be answered, and the other.
func awaitFirst(t *testing.T, a, b <-chan carryAnswer) (carryAnswer, pending) {
	t.Helper()
	select {
	case x := <-a:
		return logged(t, x), pending{"v1 waiter", b}
	case x := <-b:
		return logged(t, x), pending{"legacy waiter", a}
	case <-time.After(20 * time.Second):
		t.Fatal("no waiter was granted the released lock")
		return carryAnswer{}, pending{}
	}
}

func logged(t *testing.T, a carryAnswer) carryAnswer {
	t.Helper()
	if a.err != nil {
		t.Fatalf("%s: %v (hops %v)", a.label, a.err, a.hops)
	}
	t.Logf("%s: %d %v via %v", a.label, a.code, a.body, a.hops)
	return a
}

// grantFence checks that a carried waiter was granted, after at least one
// redirect ending at newBase, a fence above after, and returns the fence.
func grantFence(t *testing.T, a carryAnswer, after float64, newBase string) float64 {
	t.Helper()
	fence, _ := a.body["fencing_token"].(float64)
	if a.label == "legacy waiter" {
		fence, _ = a.body["fencingtoken"].(float64)
		if a.body["lockacquired"] != true {
			fence = 0
		}
	}
	if a.code != http.StatusOK || fence <= after {
		t.Fatalf("%s: %d %v, want a grant with a fence above %v", a.label, a.code, a.body, after)
	}
	if len(a.hops) == 0 || !strings.HasPrefix(a.hops[len(a.hops)-1], newBase) {
		t.Fatalf("%s was answered via %v, not carried to %s", a.label, a.hops, newBase)
	}
	return fence
}

// releaseGrant releases what a waiter was granted, through its own API.
func releaseGrant(t *testing.T, ec *e2eCluster, base string, a carryAnswer) {
	t.Helper()
	var st int
	var m map[string]any
	if a.label == "legacy waiter" {
		st, m, _ = ec.do(ec.follow, http.MethodDelete, base+"/releaselock?lockname=moved&auth="+testKey+"&token="+a.body["sessiontoken"].(string), nil)
	} else {
		st, m, _ = ec.do(ec.follow, http.MethodDelete, base+"/v1/locks/moved", strings.NewReader(`{"token":"`+a.body["session_token"].(string)+`"}`), bearer()...)
	}
	if st != http.StatusOK {
		t.Fatalf("release of %s's grant: %d %v", a.label, st, m)
	}
}
