package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

// opsProc is one `doubledutch serve` process on loopback ports.
type opsProc struct {
	id       string
	apiPort  int
	raftPort int
	dataDir  string
	cmd      *exec.Cmd
}

func (p *opsProc) url() string      { return fmt.Sprintf("http://127.0.0.1:%d", p.apiPort) }
func (p *opsProc) raftAddr() string { return fmt.Sprintf("127.0.0.1:%d", p.raftPort) }

// newOpsProc picks ports and a data directory for a node.
func newOpsProc(t *testing.T, id, dir string) *opsProc {
	return &opsProc{id: id, apiPort: freePort(t), raftPort: freePort(t), dataDir: filepath.Join(dir, id)}
}

// serveFlags are the node's serve flags; extra adds --voters or --join.
func (p *opsProc) serveFlags(extra ...string) []string {
	return append([]string{
		"--node-id", p.id, "--listen", fmt.Sprintf("127.0.0.1:%d", p.apiPort), "--http",
		"--api-key", testKey, "--admin-key", testAdminKey, "--raft-bind", p.raftAddr(), "--data-dir", p.dataDir,
		"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--leader-lease-timeout", "250ms",
		"--log-level", "warn",
	}, extra...)
}

// start runs the node; it is killed at the end of the test.
func (p *opsProc) start(t *testing.T, bin string, extra ...string) {
	t.Helper()
	p.cmd = exec.Command(bin, append([]string{"serve"}, p.serveFlags(extra...)...)...)
	sink := testlog.Writer(t) // stops after the kill below
	p.cmd.Stdout, p.cmd.Stderr = sink, sink
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := p.cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
}

// kill stops the node as a crash would.
func (p *opsProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = p.cmd.Process.Wait()
}

func votersFlag(nodes []*opsProc) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n.id+"="+n.raftAddr())
	}
	return strings.Join(parts, ",")
}

func startOpsCluster(t *testing.T, bin, dir string) []*opsProc {
	nodes := []*opsProc{newOpsProc(t, "node1", dir), newOpsProc(t, "node2", dir), newOpsProc(t, "node3", dir)}
	for _, n := range nodes {
		n.start(t, bin, "--voters", votersFlag(nodes))
	}
	return nodes
}

func urlsOf(nodes []*opsProc) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.url())
	}
	return out
}

// runCLI runs a doubledutch subcommand and returns its standard output.
func runCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("doubledutch %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	t.Logf("doubledutch %s: %s", args[0], strings.TrimSpace(out.String()))
	return out.String()
}

func acquireEventually(t *testing.T, c *client.Client, name, owner string, lifetime time.Duration) *client.Lock {
	t.Helper()
	var l *client.Lock
	waitUntil(t, 20*time.Second, "acquire "+name, func() bool {
		var err error
		l, err = c.Acquire(context.Background(), name, client.AcquireOptions{Lifetime: lifetime, Owner: owner})
		return err == nil
	})
	return l
}

// TestBackupTotalLossRestoreProcesses is the documented procedure with
// real processes: backup from a live cluster, kill every node and delete
// every data directory, restore each new node from the file, start them:
// the locks are back with their owners and fencing tokens and their
// remaining time, and a new grant's token is larger than any before.
func TestBackupTotalLossRestoreProcesses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	nodes := startOpsCluster(t, bin, dir)
	c := client.New(urlsOf(nodes), testKey, nil)
	keep := acquireEventually(t, c, "keep", "alice", time.Hour)
	keep2 := acquireEventually(t, c, "keep/2", "bob", time.Hour)
	// serve bridges Raft's own go-metrics into /metrics: every node
	// reports Raft's RPC timings, the leader its commit time.
	waitUntil(t, 10*time.Second, "Raft's own metrics on /metrics", func() bool {
		found := 0
		for _, n := range nodes {
			if body := getText(n.url() + "/metrics"); strings.Contains(body, "raft_rpc_") || strings.Contains(body, "raft_commitTime") {
				found++
			}
		}
		return found == len(nodes)
	})
	file := filepath.Join(dir, "cluster.backup")
	// The lock key is refused (a backup holds every session token), here
	// from the environment as in the containers, and leaves no file.
	refused := exec.Command(bin, "backup", "--url", nodes[2].url(), "--out", file)
	refused.Env = append(os.Environ(), "DOUBLEDUTCH_ADMIN_KEY="+testKey)
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Fatalf("backup with the lock key: %v: %s", err, out)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused backup left %s: %v", file, err)
	}
	// Through a follower or the leader alike: the request follows the
	// redirect with the key.
	runCLI(t, bin, "backup", "--url", nodes[2].url(), "--admin-key", testAdminKey, "--out", file)
	late := acquireEventually(t, c, "late", "", time.Hour)

	for _, n := range nodes {
		n.kill()
		if err := os.RemoveAll(n.dataDir); err != nil {
			t.Fatal(err)
		}
	}
	fresh := []*opsProc{newOpsProc(t, "node1", dir), newOpsProc(t, "node2", dir), newOpsProc(t, "node3", dir)}
	for _, n := range fresh {
		out := runCLI(t, bin, append([]string{"restore", "--from", file}, n.serveFlags("--voters", votersFlag(fresh))...)...)
		if !strings.Contains(out, "restored 2 locks") {
			t.Fatalf("restore said %q", out)
		}
	}
	// serve as usual: with the same flags, --voters included.
	for _, n := range fresh {
		n.start(t, bin, "--voters", votersFlag(fresh))
	}
	c = client.New(urlsOf(fresh), testKey, nil)
	for _, want := range []*client.Lock{keep, keep2} {
		var got *client.LockInfo
		waitUntil(t, 20*time.Second, "restored "+want.Name(), func() bool {
			var err error
			got, err = c.Get(context.Background(), want.Name())
			return err == nil
		})
		if got.FencingToken != want.Fence() || got.Owner != want.Info().Owner || got.ExpiresIn < 55*time.Minute {
			t.Fatalf("restored %s: %+v, want %+v", want.Name(), got, want.Info())
		}
	}
	if _, err := c.Get(context.Background(), "late"); err == nil {
		t.Fatal("a lock granted after the backup came back")
	}
	// The restored holder can still release with its session token.
	if err := c.Release(context.Background(), keep.Name(), keep.Token(), ""); err != nil {
		t.Fatalf("release of a restored lock: %v", err)
	}
	next := acquireEventually(t, c, "after", "", time.Minute)
	if next.Fence() <= late.Fence() {
		t.Fatalf("token after restore %d is not above %d, issued before the loss", next.Fence(), late.Fence())
	}
}

// workload runs clients that take and give back their own lock in a loop
// until stop closes, recording every acknowledged fencing token.
type workload struct {
	mu     sync.Mutex
	fences map[uint64]string
	grants int
	dup    []string
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startWorkload(c *client.Client, workers int) *workload {
	w := &workload{fences: map[uint64]string{}, stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		w.wg.Add(1)
		go func(name string) {
			defer w.wg.Done()
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				l, err := c.Acquire(ctx, name, client.AcquireOptions{Lifetime: 3 * time.Second, Wait: 3 * time.Second})
				if err == nil {
					w.note(l)
					_ = c.Release(ctx, l.Name(), l.Token(), "")
				}
				cancel()
			}
		}(fmt.Sprintf("worker-%d", i))
	}
	return w
}

func (w *workload) note(l *client.Lock) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.grants++
	if prev, ok := w.fences[l.Fence()]; ok {
		w.dup = append(w.dup, fmt.Sprintf("token %d granted for %s and %s", l.Fence(), prev, l.Name()))
	}
	w.fences[l.Fence()] = l.Name()
}

func (w *workload) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.grants
}

// waitProgress waits until the workload made n more grants.
func (w *workload) waitProgress(t *testing.T, what string, n int) {
	t.Helper()
	start := w.count()
	waitUntil(t, 30*time.Second, what, func() bool { return w.count() >= start+n })
}

// TestReplaceDeadNodeWhileClientsWork follows the documented procedure on
// a live three-node cluster of processes while clients keep taking locks:
// a node dies, it is removed, a fresh node with another id and an empty
// data directory joins and is added; then one of the original nodes dies
// too, so the new node must carry its share of every quorum. Nothing
// acknowledged is lost and no fencing token is issued twice.
func TestReplaceDeadNodeWhileClientsWork(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	nodes := startOpsCluster(t, bin, dir)
	// The client knows the node that will replace the dead one (it follows
	// redirects only to configured nodes, and that one may come to lead).
	fresh := newOpsProc(t, "node4", dir)
	c := client.New(append(urlsOf(nodes), fresh.url()), testKey, nil)
	kept := acquireEventually(t, c, "kept", "before", time.Hour)
	w := startWorkload(c, 4)
	defer func() { close(w.stop); w.wg.Wait() }()
	w.waitProgress(t, "the workload running", 20)

	leaderURL := func(live []*opsProc) string {
		for _, n := range live {
			var st struct {
				Leader struct {
					APIURL string `json:"api_url"`
				} `json:"leader"`
			}
			if getJSON(n.url()+"/v1/cluster", &st) == nil && st.Leader.APIURL != "" {
				return st.Leader.APIURL
			}
		}
		return ""
	}
	// 1. A follower dies (kill -9) and its disk is lost.
	dead := nodes[2]
	if leaderURL(nodes) == dead.url() {
		runCLI(t, bin, "transfer-leader", "--url", dead.url(), "--admin-key", testAdminKey, "node1")
	}
	dead.kill()
	_ = os.RemoveAll(dead.dataDir)
	live := nodes[:2]
	w.waitProgress(t, "clients served by two nodes", 10)

	// 2. Remove the dead voter.
	if st := sendJSON(t, http.MethodDelete, leaderURL(live)+"/v1/cluster/nodes/"+dead.id, ""); st != http.StatusOK {
		t.Fatalf("remove %s: %d", dead.id, st)
	}
	// 3. Start a fresh node with --join, 4. add it.
	fresh.start(t, bin, "--join")
	if st := sendJSON(t, http.MethodPut, leaderURL(live)+"/v1/cluster/nodes/"+fresh.id, `{"raft_address":"`+fresh.raftAddr()+`"}`); st != http.StatusOK {
		t.Fatalf("add %s: %d", fresh.id, st)
	}
	live = append(live, fresh)
	waitUntil(t, 20*time.Second, "the new node caught up and ready", func() bool {
		resp, err := http.Get(fresh.url() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	w.waitProgress(t, "clients served with the new node", 10)

	// 5. Another original node dies: the new one is now needed for every
	// quorum. Clients go on.
	victim := live[0]
	if leaderURL(live) == victim.url() {
		victim = live[1]
	}
	victim.kill()
	w.waitProgress(t, "clients served by the new node and one original", 10)

	c2 := client.New(append([]string{fresh.url()}, urlsOf(live)...), testKey, nil) // via the new node
	got, err := c2.Get(context.Background(), "kept")
	if err != nil || got.FencingToken != kept.Fence() {
		t.Fatalf("lock granted before the replacement: %+v %v, want token %d", got, err, kept.Fence())
	}
	close(w.stop)
	w.wg.Wait()
	w.stop = make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dup) > 0 {
		t.Fatalf("fencing tokens reused: %v", w.dup)
	}
	t.Logf("%d grants acknowledged, all with distinct fencing tokens", w.grants)
}

// getText GETs url without a key and returns the body ("" on failure).
func getText(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getJSON(url string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// sendJSON sends an admin request (membership) with the admin key.
func sendJSON(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
