package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestUnknownOutcomeCarriedWithRequestIDGrantsOnceOnRealCluster makes a
// real unknown outcome, once for a v1 acquire sent without a request id
// and once for an original /getlock (which has none): the leader appends
// the acquire and replicates it, the followers append it, but every
// answer they send back is lost (the proxies in front of their Raft ports
// drop replies). The leader cannot commit; its lease runs out and it
// steps down, so the acquire's outcome is unknown to it. It is then cut
// off, the followers hear each other again, one of them wins, and it
// commits the entry with the first entry of its term: the lock is held
// under that grant's fence while the client still waits for its answer.
// Healed, the old leader answers with a 307 there carrying the request
// id it gave the acquire, and the retry is answered from the dedup table
// with that same fence. Without the carried id the retry would be a new
// acquire of a held lock with no wait left: refused, or, were dedup
// broken, a second grant with a new fence.
func TestUnknownOutcomeCarriedWithRequestIDGrantsOnceOnRealCluster(t *testing.T) {
	// A lease long enough that the acquire surely reaches the leader
	// before it notices it hears nobody; heartbeats at least as long.
	ec := startE2EClusterWith(t, e2eOptions{raftProxies: true,
		heartbeat: 2 * time.Second, election: 2 * time.Second, lease: 1500 * time.Millisecond,
		// The old leader holds the request until it hears of the next
		// leader, which it does only once the test heals it.
		leaderWait: 30 * time.Second})
	// A committed write first, so every Raft connection is open and warm.
	if st, m, _ := ec.do(ec.follow, http.MethodPost, ec.urls[ec.leader()]+"/v1/locks/warm", strings.NewReader(`{"lifetime":60}`), bearer()...); st != http.StatusOK {
		t.Fatalf("warm-up grant: %d %v", st, m)
	}
	v1 := unknownOutcomeRound(t, ec, "anon", "fencing_token", func(base string) <-chan carryAnswer {
		return ec.sendFollowing("v1 acquire", http.MethodPost, base+"/v1/locks/anon", `{"lifetime":60,"owner":"anon"}`, bearer()...)
	})
	if v1.body["duplicate"] != true {
		t.Fatalf("v1 acquire: %v, want it marked as a duplicate of the first grant", v1.body)
	}
	orig := unknownOutcomeRound(t, ec, "orig", "fencingtoken", func(base string) <-chan carryAnswer {
		return ec.sendFollowing("original acquire", http.MethodGet, base+"/getlock?lockname=orig&lifetime=60&auth="+testKey, "")
	})
	if orig.body["lockacquired"] != true {
		t.Fatalf("original acquire: %v", orig.body)
	}
}

// unknownOutcomeRound runs one unknown-outcome failover (see the test)
// around the acquire of lock name that send makes at the leader, checks
// that the answer carries the fence of the grant the first proposal
// committed (read in the answer's fenceKey), and returns the answer.
func unknownOutcomeRound(t *testing.T, ec *e2eCluster, name, fenceKey string, send func(base string) <-chan carryAnswer) carryAnswer {
	t.Helper()
	lead := ec.leader()
	var ans <-chan carryAnswer
	now := failOverWithAnswersLost(t, ec, lead, func() { ans = send(ec.urls[lead]) })
	// The first proposal commits at the new leader while its client still
	// waits at the old one: its outcome was unknown, not lost.
	var first any
	waitUntil(t, 10*time.Second, "the first proposal's grant at the new leader", func() bool {
		st, m, _ := ec.do(ec.client, http.MethodGet, ec.urls[now]+"/v1/locks/"+name, nil, bearer()...)
		first = m["fencing_token"]
		return st == http.StatusOK
	})
	noAnswerYet(t, ans, name)
	ec.isolate(lead, false)
	if got := ec.leader(); got != now {
		t.Fatalf("after the heal node%d leads, want node%d", got+1, now+1)
	}
	t.Logf("old leader node%d, new leader node%d, first grant's fence %v", lead+1, now+1, first)
	a := await(t, ans, 40*time.Second)
	if len(a.hops) == 0 || !strings.HasPrefix(a.hops[0], ec.urls[now]) || carriedRequestID(a) == "" {
		t.Fatalf("%s answered via %v: not carried to node%d by a 307 with a request id", a.label, a.hops, now+1)
	}
	if a.code != http.StatusOK || a.body[fenceKey] != first {
		t.Fatalf("%s: %d %v, want the first grant's fence %v", a.label, a.code, a.body, first)
	}
	_, lock := ec.lockAt(ec.urls[now], name)
	if lock["fencing_token"] != first || lock["waiters"] != float64(0) {
		t.Fatalf("%s: the lock is %v, want still the first grant (fence %v)", a.label, lock, first)
	}
	return a
}

// failOverWithAnswersLost drops every answer the followers send the
// leader, calls send, waits until the leader steps down (its lease runs
// out), then cuts it off and restores the followers' links until one of
// them leads, and returns that one. The old leader stays cut off.
func failOverWithAnswersLost(t *testing.T, ec *e2eCluster, lead int, send func()) int {
	t.Helper()
	var followers []int
	for i := range ec.nodes {
		if i != lead {
			followers = append(followers, i)
		}
	}
	for _, f := range followers {
		ec.raftProxies[f].DropReplies(true)
	}
	send()
	waitUntil(t, 20*time.Second, "the leader that hears no answers to step down", func() bool {
		return !ec.nodes[lead].cluster.IsLeader()
	})
	// Its log is as long as theirs: cut it off, so that a follower
	// holding the entry wins.
	ec.isolate(lead, true)
	for _, f := range followers {
		ec.raftProxies[f].DropReplies(false)
	}
	now := -1
	waitUntil(t, 20*time.Second, "a follower to lead", func() bool {
		for _, f := range followers {
			if ec.nodes[f].cluster.IsLeader() {
				now = f
				return true
			}
		}
		return false
	})
	return now
}

// carriedRequestID is the request_id of the first redirect a followed.
func carriedRequestID(a carryAnswer) string {
	if len(a.hops) == 0 {
		return ""
	}
	u, err := url.Parse(a.hops[0])
	if err != nil {
		return ""
	}
	return u.Query().Get("request_id")
}
