package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// Against real three-node clusters (processes, Raft over loopback TCP),
// each node's API behind a proxy that can drop the client's traffic.

func newClient(t testing.TB, endpoints []string, tune func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{Endpoints: endpoints, APIKey: ddtest.Key}
	if tune != nil {
		tune(&cfg)
	}
	c, err := client.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// followersFirst lists the cluster's URLs with the leader last, so calls
// start at a follower and go through its redirect.
func followersFirst(c *ddtest.Cluster, leader int) []string {
	var out []string
	for i, n := range c.Nodes {
		if i != leader {
			out = append(out, n.URL)
		}
	}
	return append(out, c.Nodes[leader].URL)
}

func TestAcquireRefreshReleaseThroughFollowers(t *testing.T) {
	cl := ddtest.Start(t, binary)
	leader, _ := cl.WaitLeader(10 * time.Second)
	c := newClient(t, followersFirst(cl, leader), nil)
	ctx := context.Background()
	const lifetime = 5 * time.Second
	sent := time.Now()
	l, err := c.Acquire(ctx, "round-trip", client.AcquireOptions{Lifetime: lifetime, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Fence() == 0 || l.Token() == "" || l.Name() != "round-trip" {
		t.Fatalf("grant: fence %d, token set %v, name %q", l.Fence(), l.Token() != "", l.Name())
	}
	if d := l.Deadline(); !d.After(time.Now()) || d.After(sent.Add(lifetime)) {
		t.Fatalf("deadline %v not within (now, first send + lifetime]", time.Until(d))
	}
	got, err := c.Get(ctx, "round-trip")
	if err != nil || got.FencingToken != l.Fence() || got.Owner != "test" {
		t.Fatalf("get: %+v %v", got, err)
	}
	before := l.Deadline()
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !l.Deadline().After(before) {
		t.Fatal("refresh did not move the deadline")
	}
	select {
	case <-l.Lost():
		t.Fatalf("lost while held: %v", l.Err())
	default:
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(l.Err(), client.ErrReleased) {
		t.Fatalf("after release: %v", l.Err())
	}
	<-l.Lost()
	if _, err := c.Get(ctx, "round-trip"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after release: %v", err)
	}
	if err := l.Refresh(ctx); !errors.Is(err, client.ErrReleased) {
		t.Fatalf("refresh of a released handle: %v", err)
	}
}

// checkLostAtDeadline waits for Lost to close and checks that it closed
// at the deadline (allowing a loaded machine's timer and scheduling
// delay), not earlier and not much later; it returns when it was seen.
func checkLostAtDeadline(t *testing.T, l *client.Lock, lost <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-lost:
		if late := at.Sub(l.Deadline()); late < 0 || late > 500*time.Millisecond {
			t.Fatalf("Lost closed %v after the deadline", late)
		}
		if !errors.Is(l.Err(), client.ErrLockLost) {
			t.Fatalf("Err after the cut: %v", l.Err())
		}
		return at
	case <-time.After(5 * time.Second):
		t.Fatalf("Lost still open %v after the deadline", time.Since(l.Deadline()))
		return time.Time{}
	}
}

// lostAt records when l's Lost closes.
func lostAt(l *client.Lock) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		<-l.Lost()
		ch <- time.Now()
	}()
	return ch
}

// The client cut off from the cluster (its traffic dropped) loses the
// lock, and Lost closes before anyone else is granted it: one monotonic
// timeline, this process's.
func TestCutOffClientLosesTheLockBeforeAnyoneElseGetsIt(t *testing.T) {
	cl := ddtest.Start(t, binary)
	const lifetime = 2 * time.Second
	c := newClient(t, cl.URLs(), nil)
	l, err := c.Acquire(context.Background(), "cut", client.AcquireOptions{Lifetime: lifetime, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer releaseQuietly(l)
	lost := lostAt(l)
	first := l.Deadline()
	waitFor(t, 10*time.Second, "a keepalive refresh", func() bool { return l.Deadline().After(first) })
	cl.Blackhole(true)
	cut := time.Now()
	granted := cl.GrantElsewhere(t, "cut", 20*time.Second)
	// The safety property is the deadline's: it lies before the other
	// grant. Lost closes at the deadline, as late as a timer may fire on a
	// loaded machine; lostTime is when a goroutine saw it.
	if d := l.Deadline(); !d.Before(granted) {
		t.Fatalf("the deadline lies %v after another client's grant", d.Sub(granted))
	}
	lostTime := checkLostAtDeadline(t, l, lost)
	t.Logf("cut at 0; deadline %v, Lost seen at %v; other client's grant sent at %v",
		l.Deadline().Sub(cut), lostTime.Sub(cut), granted.Sub(cut))
}

// The leader killed during a keepalive: the lock survives on the new
// leader, and the deadline stays honest (checked as above, by cutting the
// client off afterwards).
func TestKeepaliveSurvivesLeaderKill(t *testing.T) {
	cl := ddtest.Start(t, binary)
	const lifetime = 8 * time.Second
	c := newClient(t, cl.URLs(), nil)
	l, err := c.Acquire(context.Background(), "survivor", client.AcquireOptions{Lifetime: lifetime, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer releaseQuietly(l)
	lost := lostAt(l)
	leader, _ := cl.WaitLeader(10 * time.Second)
	cl.Kill(leader)
	killed := time.Now()
	// A refresh first sent after the kill has succeeded once the
	// deadline lies more than a (shortened) lifetime past the kill.
	waitFor(t, 20*time.Second, "a refresh through the new leader", func() bool {
		return l.Deadline().After(killed.Add(lifetime * 99 / 100))
	})
	select {
	case <-lost:
		t.Fatalf("lost across the failover: %v", l.Err())
	default:
	}
	got, err := c.Get(context.Background(), "survivor")
	if err != nil || got.FencingToken != l.Fence() {
		t.Fatalf("after the failover: %+v %v, want fence %d", got, err, l.Fence())
	}
	cl.Blackhole(true)
	granted := cl.GrantElsewhere(t, "survivor", 30*time.Second)
	if d := l.Deadline(); !d.Before(granted) {
		t.Fatalf("the deadline lies %v after another client's grant", d.Sub(granted))
	}
	checkLostAtDeadline(t, l, lost)
}

// A grant whose reply is lost is retried with the same request id and
// answered with the same grant: one grant, not two (nor a "busy" from
// the first).
func TestLostReplyIsRetriedIntoTheSameGrant(t *testing.T) {
	cl := ddtest.Start(t, binary)
	leader, _ := cl.WaitLeader(10 * time.Second)
	eps := append([]string{cl.Nodes[leader].URL}, followersFirst(cl, leader)[:2]...)
	c := newClient(t, eps, func(cfg *client.Config) { cfg.AttemptTimeout = time.Second })
	cl.Nodes[leader].Proxy.DropNextReply()
	l, err := c.Acquire(context.Background(), "once", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatalf("acquire after a lost reply: %v", err)
	}
	if n := cl.Nodes[leader].Proxy.DroppedReplies(); n != 1 {
		t.Fatalf("%d replies dropped, want the first attempt's", n)
	}
	got, err := c.Get(context.Background(), "once")
	if err != nil || got.FencingToken != l.Fence() {
		t.Fatalf("holder %+v %v, want the returned grant (fence %d)", got, err, l.Fence())
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatalf("release with the returned token: %v", err)
	}
	if _, err := c.Get(context.Background(), "once"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after release: %v (a second grant?)", err)
	}
}

// waitFor waits on a condition with a deadline.
var waitFor = ddtest.WaitFor

// releaseQuietly releases a handle at the end of a test that may have cut
// the client off: a bounded try, its answer irrelevant.
func releaseQuietly(l *client.Lock) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.Release(ctx)
}
