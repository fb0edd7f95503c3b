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
// waiter gets exactly one grant, at the new leader, one after the other
// (carriedWaiters.serve).
func TestWaitersCarriedAcrossLeadershipTransfer(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.leader()
	cw := queueTwoWaiters(t, ec, ec.urls[lead], "moved")
	target := (lead + 1) % 3
	admin := []string{"Authorization", "Bearer " + testAdminKey}
	st, m, _ := ec.do(ec.follow, http.MethodPost, ec.urls[lead]+"/v1/cluster/leader", strings.NewReader(`{"target":"`+ec.nodes[target].cfg.NodeID+`"}`), admin...)
	if st != http.StatusOK {
		t.Fatalf("transfer: %d %v", st, m)
	}
	if got := ec.leader(); got != target {
		t.Fatalf("leader is node %d, want %d", got, target)
	}
	cw.serve(t, ec.urls[target])
}

// carriedWaiters is a lock held by a holder and two waiters queued
// behind it at one leader: a /getlock waiter and a v1 waiter with a
// request id.
type carriedWaiters struct {
	ec         *e2eCluster
	name       string
	held       map[string]any // the holder's grant
	legacy, v1 <-chan carryAnswer
	v1Body     string
	oldBase    string
}

// queueTwoWaiters takes lock name at the leader at base, with a lifetime
// that outlasts the test, and queues the two waiters behind it, in order.
func queueTwoWaiters(t *testing.T, ec *e2eCluster, base, name string) *carriedWaiters {
	t.Helper()
	cw := &carriedWaiters{ec: ec, name: name, oldBase: base}
	code, held, _ := ec.do(ec.follow, http.MethodPost, base+"/v1/locks/"+name, strings.NewReader(`{"lifetime":60,"owner":"holder"}`), bearer()...)
	if code != http.StatusOK {
		t.Fatalf("holder: %d %v", code, held)
	}
	cw.held = held
	cw.legacy = ec.sendFollowing("legacy waiter", http.MethodGet, base+"/getlock?lockname="+name+"&timeout=40&lifetime=60&auth="+testKey, "")
	waitUntil(t, 10*time.Second, "the legacy waiter to queue at the leader", func() bool {
		_, m := ec.lockAt(base, name)
		return m["waiters"] == float64(1)
	})
	cw.v1Body = `{"lifetime":60,"wait":40,"owner":"v1-waiter","request_id":"carried-` + name + `-0001"}`
	cw.v1 = ec.sendFollowing("v1 waiter", http.MethodPost, base+"/v1/locks/"+name, cw.v1Body, bearer()...)
	waitUntil(t, 10*time.Second, "both waiters to queue at the leader", func() bool {
		_, m := ec.lockAt(base, name)
		return m["waiters"] == float64(2)
	})
	return cw
}

// serve checks, once leadership moved to the node at newBase, that both
// waiters wait there and were granted nothing (the holder still holds);
// then releases the holder and checks that each waiter gets exactly one
// grant there, one after the other: the lock holds each answered fence in
// turn, the v1 waiter's request id repeated is answered as a duplicate of
// its one grant (or, once released, never granted again), and after both
// release nothing holds the lock. The carried waiters re-queue in the
// order their redirects arrive, so FIFO across the move is not asserted.
func (cw *carriedWaiters) serve(t *testing.T, newBase string) {
	t.Helper()
	ec, name := cw.ec, cw.name
	waitUntil(t, 15*time.Second, "both waiters to queue at the new leader", func() bool {
		_, m := ec.lockAt(newBase, name)
		return m["waiters"] == float64(2) && m["fencing_token"] == cw.held["fencing_token"]
	})
	noAnswerYet(t, cw.legacy, "the legacy waiter")
	noAnswerYet(t, cw.v1, "the v1 waiter")
	st, m, _ := ec.do(ec.follow, http.MethodDelete, newBase+"/v1/locks/"+name, strings.NewReader(`{"token":"`+cw.held["session_token"].(string)+`"}`), bearer()...)
	if st != http.StatusOK {
		t.Fatalf("holder's release: %d %v", st, m)
	}
	first, second := awaitFirst(t, cw.legacy, cw.v1)
	fence1 := cw.grantFence(t, first, cw.held["fencing_token"].(float64), newBase)
	_, now := ec.lockAt(newBase, name)
	if now["fencing_token"] != fence1 || now["waiters"] != float64(1) {
		t.Fatalf("after the first grant (fence %v) the lock is %v", fence1, now)
	}
	noAnswerYet(t, second.ch, second.label)
	cw.release(t, newBase, first)
	sa := await(t, second.ch, 20*time.Second)
	fence2 := cw.grantFence(t, sa, fence1, newBase)
	_, now = ec.lockAt(newBase, name)
	if now["fencing_token"] != fence2 || now["waiters"] != float64(0) {
		t.Fatalf("after the second grant (fence %v) the lock is %v", fence2, now)
	}
	code, dup, _ := ec.do(ec.follow, http.MethodPost, newBase+"/v1/locks/"+name, strings.NewReader(cw.v1Body), bearer()...)
	if first.label == "v1 waiter" {
		if code == http.StatusOK {
			t.Fatalf("repeat of the released v1 grant was granted again: %v", dup)
		}
	} else if code != http.StatusOK || dup["duplicate"] != true || dup["fencing_token"] != fence2 {
		t.Fatalf("repeat of the v1 waiter's request: %d %v, want a duplicate of fence %v", code, dup, fence2)
	}
	cw.release(t, newBase, sa)
	waitUntil(t, 10*time.Second, "the lock to be free", func() bool {
		c, _ := ec.lockAt(newBase, name)
		return c == http.StatusNotFound
	})
}

// pending is a waiter not yet answered.
type pending struct {
	label string
	ch    <-chan carryAnswer
}

// awaitFirst returns the first of two waiters to be answered, and the other.
func awaitFirst(t *testing.T, legacy, v1 <-chan carryAnswer) (carryAnswer, pending) {
	t.Helper()
	select {
	case x := <-legacy:
		return logged(t, x), pending{"v1 waiter", v1}
	case x := <-v1:
		return logged(t, x), pending{"legacy waiter", legacy}
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

// grantFence checks that a waiter was granted a fence above after, and
// was carried: its last redirect led to newBase, away from the old
// leader. It returns the fence.
func (cw *carriedWaiters) grantFence(t *testing.T, a carryAnswer, after float64, newBase string) float64 {
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
		t.Fatalf("%s was answered via %v, not carried from %s to %s", a.label, a.hops, cw.oldBase, newBase)
	}
	return fence
}

// release releases what a waiter was granted, through its own API.
func (cw *carriedWaiters) release(t *testing.T, base string, a carryAnswer) {
	t.Helper()
	var st int
	var m map[string]any
	if a.label == "legacy waiter" {
		st, m, _ = cw.ec.do(cw.ec.follow, http.MethodDelete, base+"/releaselock?lockname="+cw.name+"&auth="+testKey+"&token="+a.body["sessiontoken"].(string), nil)
	} else {
		st, m, _ = cw.ec.do(cw.ec.follow, http.MethodDelete, base+"/v1/locks/"+cw.name, strings.NewReader(`{"token":"`+a.body["session_token"].(string)+`"}`), bearer()...)
	}
	if st != http.StatusOK {
		t.Fatalf("release of %s's grant: %d %v", a.label, st, m)
	}
}

// TestWaitersCarriedAcrossCutOffLeader: the same two waiters queued at a
// leader that is then cut off from both followers (the proxies in front
// of the followers' Raft ports blackhole its connections, the one in
// front of its own blackholes everything). The followers elect a new
// leader; the old one, hearing nobody, steps down when its lease runs
// out, and once it hears of the new leader its waiters are carried there
// by a 307, where each gets exactly one grant (carriedWaiters.serve).
func TestWaitersCarriedAcrossCutOffLeader(t *testing.T) {
	ec := startE2EClusterWith(t, e2eOptions{raftProxies: true})
	lead := ec.leader()
	cw := queueTwoWaiters(t, ec, ec.urls[lead], "cutoff")
	ec.isolate(lead, true)
	next := -1
	waitUntil(t, 20*time.Second, "a follower to lead and the cut-off leader to step down", func() bool {
		next = -1
		for i, n := range ec.nodes {
			if i != lead && n.cluster.IsLeader() {
				next = i
			}
		}
		return next >= 0 && !ec.nodes[lead].cluster.IsLeader()
	})
	noAnswerYet(t, cw.legacy, "the legacy waiter")
	noAnswerYet(t, cw.v1, "the v1 waiter")
	ec.isolate(lead, false)
	if got := ec.leader(); got != next {
		t.Fatalf("after the heal node%d leads, want node%d", got+1, next+1)
	}
	cw.serve(t, ec.urls[next])
}
