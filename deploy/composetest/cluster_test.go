package composetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCluster starts one cluster and runs the scenarios on it in order.
// Each scenario first heals whatever the previous one left broken and
// uses lock names of its own, so they stay independent; the last one
// (no quorum) leaves the cluster broken for teardown.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	scenarios := []struct {
		name string
		run  func(*cluster)
	}{
		{"0_Image", (*cluster).testImage},
		{"1_ReplicatedReadsThroughRedirects", (*cluster).testReplicatedReads},
		{"2_KillLeader", (*cluster).testKillLeader},
		{"3_PartitionLeader", (*cluster).testPartitionLeader},
		{"4_RestartAll", (*cluster).testRestartAll},
		{"5_TransferLeaderWithAdminKey", (*cluster).testTransferLeader},
		{"6_NoQuorum", (*cluster).testNoQuorum},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) { s.run(c.with(t)) })
	}
}

// testTransferLeader moves leadership with the admin key that the compose
// file provisions as a secret; the lock key must not be able to.
func (c *cluster) testTransferLeader() {
	from := c.waitAgreedLeader(30*time.Second, 0, 1, 2)
	post := func(key string) reply {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(from, "/v1/cluster/leader"), strings.NewReader("{}"))
		if err != nil {
			return reply{err: err}
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.direct.Do(req)
		if err != nil {
			return reply{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return reply{status: resp.StatusCode, header: resp.Header, body: b, err: err}
	}
	if r := post(c.apiKey); r.status != http.StatusUnauthorized {
		c.t.Fatalf("transfer with the lock key: %s, want 401", r)
	}
	if r := post(c.adminKey); r.status != http.StatusOK {
		c.t.Fatalf("transfer with the admin key: %s", r)
	}
	waitFor(c.t, 30*time.Second, "a new leader all agree on", func() (bool, string) {
		to, why := c.agreedLeader(0, 1, 2)
		return to >= 0 && to != from, why
	})
}

// testImage checks what the image promises: a non-root user, a health
// check through the binary, and containers that report healthy.
func (c *cluster) testImage() {
	t := c.t
	var cfg struct {
		User         string
		ExposedPorts map[string]any
		Entrypoint   []string
		Healthcheck  struct{ Test []string }
	}
	out := c.run(time.Minute, "docker", "image", "inspect", "-f", "{{json .Config}}", c.image)
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("image config: %v: %s", err, out)
	}
	if cfg.User != fmt.Sprintf("%d:%d", containerUID, containerUID) {
		t.Errorf("image user %q, want %d:%d", cfg.User, containerUID, containerUID)
	}
	if !slices.Contains(cfg.Healthcheck.Test, "health") {
		t.Errorf("image health check %q does not run `doubledutch health`", cfg.Healthcheck.Test)
	}
	for _, p := range []string{"8000/tcp", "7000/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("image does not expose %s: %v", p, cfg.ExposedPorts)
		}
	}
	// The compose health check (doubledutch health, TLS verified against
	// the CA secret) turns every container healthy.
	waitFor(t, 60*time.Second, "all three containers healthy", func() (bool, string) {
		for i := range services {
			st := strings.TrimSpace(c.runQuiet(time.Minute, "docker", "inspect", "-f", "{{.State.Health.Status}}", c.container(i)))
			if st != "healthy" {
				return false, fmt.Sprintf("%s is %q", services[i], st)
			}
		}
		return true, ""
	})
}

// testReplicatedReads is scenario 1: a lock acquired through node 1 reads
// the same through nodes 2 and 3, redirects followed, TLS verified.
func (c *cluster) testReplicatedReads() {
	t := c.t
	leader := c.heal()

	g := c.mustAcquire(0, "s1-lock")
	t.Logf("acquired s1-lock through node1 (leader %s): fencing token %d", nodeIDs[leader], g.FencingToken)
	for _, i := range []int{1, 2} {
		l := c.mustReadLock(i, "s1-lock")
		if l.Name != "s1-lock" || l.FencingToken != g.FencingToken {
			t.Errorf("read through %s: %+v, want fencing token %d", nodeIDs[i], l, g.FencingToken)
		}
	}

	// A follower redirects to the leader's advertised URL, which the host
	// can reach (the published port equals the port inside).
	f := others(leader)[0]
	r := c.readLock(c.direct, f, "s1-lock")
	if want := c.url(leader, "/v1/locks/s1-lock"); r.err != nil || r.status != http.StatusTemporaryRedirect || r.header.Get("Location") != want {
		t.Errorf("GET through follower %s: %s (Location %q), want 307 to %s", nodeIDs[f], r, r.header.Get("Location"), want)
	}

	// The original API through a follower: the key travels in the query,
	// so the redirect keeps it.
	lr := c.legacyGetLock(c.follow, f, "s1-legacy")
	var lg legacyGrant
	if lr.err != nil || lr.status != http.StatusOK {
		t.Fatalf("legacy getlock through %s: %s", nodeIDs[f], lr)
	}
	lr.decode(t, &lg)
	if !lg.LockAcquired || lg.SessionToken == "" || lg.FencingToken <= g.FencingToken {
		t.Errorf("legacy getlock: %+v, want acquired with a fencing token above %d", lg, g.FencingToken)
	}
	sr := c.send(c.follow, http.MethodGet, c.url(others(leader)[1], "/status?auth="+c.apiKey), nil, requestWait, false)
	var st struct {
		Locks []struct {
			LockName     string `json:"lockname"`
			FencingToken uint64 `json:"fencingtoken"`
		} `json:"locks"`
	}
	if sr.err != nil || sr.status != http.StatusOK {
		t.Fatalf("legacy status: %s", sr)
	}
	sr.decode(t, &st)
	got := map[string]uint64{}
	for _, l := range st.Locks {
		got[l.LockName] = l.FencingToken
	}
	if got["s1-lock"] != g.FencingToken || got["s1-legacy"] != lg.FencingToken {
		t.Errorf("legacy status lists %v, want s1-lock=%d s1-legacy=%d", got, g.FencingToken, lg.FencingToken)
	}

	// TLS is really on and really verified: without the CA the handshake
	// fails; with it (every request above) it succeeds.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get(c.url(f, "/v1/health")); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the cluster CA connected: %s", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the cluster CA failed, but not on the certificate: %v", err)
	}
	if r := c.send(c.follow, http.MethodGet, c.url(f, "/v1/locks/s1-lock"), nil, requestWait, false); r.status != http.StatusUnauthorized {
		t.Errorf("read without the API key: %s, want 401", r)
	}
}

// testKillLeader is scenario 2, repeated to measure failover: docker kill
// the leader, time the first successful acquire through a survivor, check
// that locks and fencing tokens survived, start the node again and wait
// until it has caught up.
func (c *cluster) testKillLeader() {
	t := c.t
	kills := 5
	if v, err := strconv.Atoi(os.Getenv("DOUBLEDUTCH_COMPOSETEST_KILLS")); err == nil && v > 0 {
		kills = v
	}
	leader := c.heal()
	held := c.mustAcquire(leader, "s2-held")
	maxFence := held.FencingToken

	var took []time.Duration
	for k := 0; k < kills; k++ {
		leader = c.waitAgreedLeader(30*time.Second, 0, 1, 2)
		victim := c.container(leader)
		survivors := others(leader)
		c.run(time.Minute, "docker", "kill", victim)
		killed := time.Now()

		// The first grant through a survivor. The request id makes a retry
		// after an unknown outcome safe; redirects to the dead leader fail
		// fast (connection refused) and are retried.
		name, id := fmt.Sprintf("s2-after-kill-%d", k), "composetest-"+randomHex(8)
		var g grant
		var last reply
		for n := 0; ; n++ {
			last = c.acquire(c.follow, survivors[n%2], name, id)
			if last.err == nil && last.status == http.StatusOK {
				last.decode(t, &g)
				break
			}
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("kill %d: no grant through %s within 30s; last answer %s", k+1, names(survivors), last)
			}
			time.Sleep(50 * time.Millisecond)
		}
		d := time.Since(killed)
		took = append(took, d)

		newLeader := c.waitAgreedLeader(15*time.Second, survivors...)
		t.Logf("kill %d: killed leader %s; %s leads; first acquire after %v (fencing token %d)",
			k+1, nodeIDs[leader], nodeIDs[newLeader], d.Round(time.Millisecond), g.FencingToken)
		if newLeader == leader {
			t.Fatalf("kill %d: the killed node %s still counts as leader", k+1, nodeIDs[leader])
		}
		if d > 15*time.Second {
			t.Errorf("kill %d: the first grant took %v, want a few seconds", k+1, d)
		}
		if g.FencingToken <= maxFence {
			t.Errorf("kill %d: new grant has fencing token %d, not above %d", k+1, g.FencingToken, maxFence)
		}
		maxFence = g.FencingToken
		if l := c.mustReadLock(survivors[0], "s2-held"); l.FencingToken != held.FencingToken {
			t.Errorf("kill %d: s2-held has fencing token %d after failover, want %d", k+1, l.FencingToken, held.FencingToken)
		}

		// The killed node comes back and catches up.
		c.run(time.Minute, "docker", "start", victim)
		now := c.waitAgreedLeader(60*time.Second, 0, 1, 2)
		c.waitCaughtUp(60*time.Second, now, leader)
		waitFor(t, 10*time.Second, nodeIDs[leader]+" holding the new grant in its own state", func() (bool, string) {
			locks, ok := c.staleLocks(leader)
			if !ok {
				return false, "no answer"
			}
			if locks[name] != g.FencingToken || locks["s2-held"] != held.FencingToken {
				return false, fmt.Sprintf("%s=%d s2-held=%d", name, locks[name], locks["s2-held"])
			}
			return true, ""
		})
	}

	sorted := slices.Clone(took)
	slices.Sort(sorted)
	t.Logf("kill -> first successful acquire through a survivor, over %d kills: p50 %v, max %v (all: %v)",
		len(sorted), sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), roundAll(took))
}

// testPartitionLeader is scenario 3: the leader is cut off the Raft network
// (its API stays reachable). It must grant nothing; the majority elects a
// leader and serves; reconnected, all three converge on one state.
func (c *cluster) testPartitionLeader() {
	t := c.t
	leader := c.heal()
	held := c.mustAcquire(leader, "s3-held")
	leader = c.waitAgreedLeader(30*time.Second, 0, 1, 2)
	majority := others(leader)

	c.run(time.Minute, "docker", "network", "disconnect", c.raftNetwork(), c.container(leader))
	cut := time.Now()
	t.Logf("cut leader %s off the Raft network", nodeIDs[leader])

	// Ask the isolated node for locks, both APIs, redirects not followed
	// (a redirect is not a grant), until the majority has moved on.
	var (
		mu       sync.Mutex
		granted  []string
		answers  = map[string]int{}
		attempts int
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			v1 := c.acquire(c.direct, leader, fmt.Sprintf("s3-isolated-%d", k), "")
			legacy := c.legacyGetLock(c.direct, leader, fmt.Sprintf("s3-isolated-legacy-%d", k))
			mu.Lock()
			attempts++
			for _, r := range []reply{v1, legacy} {
				key := "error"
				if r.err == nil {
					key = strconv.Itoa(r.status)
					if code := r.errCode(); code != "" {
						key += " " + code
					}
				}
				answers[key]++
			}
			if v1.err == nil && v1.status/100 == 2 {
				granted = append(granted, "v1: "+v1.String())
			}
			if legacy.acquired() {
				granted = append(granted, "legacy: "+legacy.String())
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// The majority elects a leader of its own and grants.
	var newLeader int
	waitFor(t, 30*time.Second, "a new leader on the majority side", func() (bool, string) {
		var why string
		newLeader, why = c.agreedLeader(majority...)
		if newLeader == leader {
			return false, "the majority still follows the isolated node"
		}
		return newLeader >= 0, why
	})
	g := c.mustAcquire(majority[0], "s3-majority")
	t.Logf("majority elected %s and granted s3-majority (fencing token %d) %v after the cut",
		nodeIDs[newLeader], g.FencingToken, time.Since(cut).Round(time.Millisecond))
	if g.FencingToken <= held.FencingToken {
		t.Errorf("majority grant has fencing token %d, not above %d", g.FencingToken, held.FencingToken)
	}
	// The isolated node gives up leadership on its own.
	waitFor(t, 15*time.Second, "the isolated node stepping down", func() (bool, string) {
		v, ok := c.clusterState(leader)
		return ok && v.RaftState != "Leader", fmt.Sprintf("says %q", v.RaftState)
	})
	// Keep asking it a little longer, then stop.
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	mu.Lock()
	t.Logf("isolated node answered %d rounds of lock requests: %v", attempts, answers)
	if len(granted) > 0 {
		t.Errorf("the isolated node granted locks: %v", granted)
	}
	if attempts == 0 {
		t.Errorf("the isolated node was never asked")
	}
	mu.Unlock()
	// Nothing the isolated node was asked for exists on the majority side.
	for name := range c.locks(majority[0]) {
		if strings.HasPrefix(name, "s3-isolated") {
			t.Errorf("lock %s asked of the isolated node is held", name)
		}
	}

	// Heal the partition: all three converge on one leader and one state.
	c.connectRaft(leader)
	healed := time.Now()
	final := c.waitAgreedLeader(60*time.Second, 0, 1, 2)
	c.waitCaughtUp(60*time.Second, final, 0, 1, 2)
	want := c.locks(final)
	if want["s3-held"] != held.FencingToken || want["s3-majority"] != g.FencingToken {
		t.Errorf("after healing: s3-held=%d s3-majority=%d, want %d and %d",
			want["s3-held"], want["s3-majority"], held.FencingToken, g.FencingToken)
	}
	c.waitSameLocks(want)
	t.Logf("after reconnecting, all three agree on leader %s and %d locks within %v",
		nodeIDs[final], len(want), time.Since(healed).Round(time.Millisecond))
}

// testRestartAll is scenario 4: docker-compose restart of all three, then
// down and up again keeping the volumes; no lock and no fencing token is
// lost, and later grants get larger fencing tokens.
func (c *cluster) testRestartAll() {
	t := c.t
	leader := c.heal()
	for k := range 3 {
		c.mustAcquire(k, fmt.Sprintf("s4-%d", k))
	}
	before := c.locks(leader)
	maxFence := uint64(0)
	for _, f := range before {
		maxFence = max(maxFence, f)
	}
	if len(before) < 3 {
		t.Fatalf("only %d locks before the restart: %v", len(before), before)
	}

	start := time.Now()
	c.composeRun(3*time.Minute, "restart")
	if d := time.Since(start); d > 15*time.Second {
		// A node that ignores SIGTERM is killed at stop_grace_period (30s);
		// show what the nodes were doing while they stopped.
		t.Logf("docker-compose restart took %v; logs since it began:", d.Round(time.Millisecond))
		for i := range services {
			t.Logf("%s:\n%s", services[i], c.runQuiet(time.Minute, "docker", "logs", "--timestamps",
				"--since", start.Add(-time.Second).UTC().Format(time.RFC3339), c.container(i)))
		}
	}
	leader = c.waitAgreedLeader(90*time.Second, 0, 1, 2)
	c.waitCaughtUp(60*time.Second, leader, 0, 1, 2)
	t.Logf("docker-compose restart: %s leads again after %v", nodeIDs[leader], time.Since(start).Round(time.Millisecond))
	after := c.locks(leader)
	if !maps.Equal(before, after) {
		t.Errorf("locks changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	c.waitSameLocks(after)
	g := c.mustAcquire(0, "s4-after-restart")
	if g.FencingToken <= maxFence {
		t.Errorf("grant after restart has fencing token %d, not above %d", g.FencingToken, maxFence)
	}
	after["s4-after-restart"] = g.FencingToken

	// down without -v and up again: new containers, the same volumes. The
	// nodes must find their state and not bootstrap a new cluster.
	start = time.Now()
	c.composeRun(3*time.Minute, "down")
	c.composeRun(3*time.Minute, "up", "-d")
	leader = c.waitAgreedLeader(90*time.Second, 0, 1, 2)
	c.waitCaughtUp(60*time.Second, leader, 0, 1, 2)
	t.Logf("docker-compose down + up (volumes kept): %s leads after %v", nodeIDs[leader], time.Since(start).Round(time.Millisecond))
	again := c.locks(leader)
	if !maps.Equal(after, again) {
		t.Errorf("locks changed across down/up:\nbefore %v\nafter  %v", after, again)
	}
	g2 := c.mustAcquire(1, "s4-after-up")
	if g2.FencingToken <= g.FencingToken {
		t.Errorf("grant after down/up has fencing token %d, not above %d", g2.FencingToken, g.FencingToken)
	}
}

// testNoQuorum is scenario 5: with two nodes stopped the last one grants
// nothing and says so with 503 and Retry-After.
func (c *cluster) testNoQuorum() {
	t := c.t
	leader := c.heal()
	gone := others(leader)
	c.composeRun(2*time.Minute, "stop", services[gone[0]], services[gone[1]])
	t.Logf("stopped %s; %s is alone", names(gone), nodeIDs[leader])

	k := 0
	check := func() reply {
		k++
		r := c.acquire(c.direct, leader, fmt.Sprintf("s5-%d", k), "")
		if r.err == nil && r.status/100 == 2 {
			t.Errorf("the lone node granted a lock: %s", r)
		}
		if l := c.legacyGetLock(c.direct, leader, fmt.Sprintf("s5-legacy-%d", k)); l.acquired() {
			t.Errorf("the lone node granted a legacy lock: %s", l)
		}
		return r
	}
	var last reply
	waitFor(t, 30*time.Second, "the lone node answering 503 with Retry-After", func() (bool, string) {
		last = check()
		return last.err == nil && last.status == http.StatusServiceUnavailable && last.header.Get("Retry-After") != "", last.String()
	})
	t.Logf("the lone node refuses: %s (Retry-After %s)", last, last.header.Get("Retry-After"))
	// And it keeps refusing.
	for range 5 {
		if r := check(); r.err != nil || r.status != http.StatusServiceUnavailable {
			t.Errorf("the lone node answered %s, want 503", r)
		}
	}
	if r := c.send(c.direct, http.MethodGet, c.url(leader, "/v1/health"), nil, requestWait, false); r.status != http.StatusServiceUnavailable {
		t.Errorf("health of the lone node: %s, want 503", r)
	}
}

// waitSameLocks waits until every node's own applied state holds exactly
// want.
func (c *cluster) waitSameLocks(want map[string]uint64) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "all three nodes holding the same locks", func() (bool, string) {
		for i := range nodeIDs {
			got, ok := c.staleLocks(i)
			if !ok {
				return false, nodeIDs[i] + " does not answer"
			}
			if !maps.Equal(got, want) {
				return false, fmt.Sprintf("%s holds %v, want %v", nodeIDs[i], got, want)
			}
		}
		return true, ""
	})
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
