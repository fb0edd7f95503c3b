package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

// procNode is one `doubledutch serve` process of a three-node cluster.
type procNode struct {
	id, api, raft, dir string
	cmd                *exec.Cmd
	out                *testlog.Buffer
}

type procCluster struct {
	t     *testing.T
	bin   string
	nodes []*procNode
}

func newProcCluster(t *testing.T, bin string) *procCluster {
	pc := &procCluster{t: t, bin: bin}
	base := t.TempDir()
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("node%d", i+1)
		pc.nodes = append(pc.nodes, &procNode{id: id, api: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			raft: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: filepath.Join(base, id)})
	}
	t.Cleanup(func() {
		for i := range pc.nodes {
			pc.stop(i)
		}
	})
	return pc
}

func (pc *procCluster) voters() string {
	var v []string
	for _, n := range pc.nodes {
		v = append(v, n.id+"="+n.raft)
	}
	return strings.Join(v, ",")
}

// start runs node i; extra flags come last and override.
func (pc *procCluster) start(i int, extra ...string) {
	n := pc.nodes[i]
	args := append([]string{"serve", "--node-id", n.id, "--listen", n.api, "--api-url", "http://" + n.api,
		"--raft-bind", n.raft, "--voters", pc.voters(), "--data-dir", n.dir, "--http", "--api-key", testKey,
		"--log-level", "warn"}, extra...)
	n.out = &testlog.Buffer{}
	n.cmd = exec.Command(pc.bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		pc.t.Fatal(err)
	}
}

// stop kills node i as a crash would, and logs what it wrote.
func (pc *procCluster) stop(i int) {
	n := pc.nodes[i]
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = n.cmd.Process.Wait()
	n.cmd = nil
	pc.t.Logf("%s output:\n%s", n.id, n.out.String())
}

type healthView struct {
	Status   string `json:"status"`
	IsLeader bool   `json:"is_leader"`
}

func (pc *procCluster) health(i int) (int, healthView) {
	var h healthView
	resp, err := http.Get("http://" + pc.nodes[i].api + "/v1/health")
	if err != nil {
		return 0, h
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h
}

func (pc *procCluster) leader(among ...int) int {
	pc.t.Helper()
	idx := -1
	waitUntil(pc.t, 20*time.Second, "a leader", func() bool {
		for _, i := range among {
			if _, h := pc.health(i); h.IsLeader {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

func (pc *procCluster) client(among ...int) *client.Client {
	var urls []string
	for _, i := range among {
		urls = append(urls, "http://"+pc.nodes[i].api)
	}
	// The other nodes last: calls start at among, and a redirect to any
	// node is followed (the client follows only configured nodes).
	for i, n := range pc.nodes {
		if !slices.Contains(among, i) {
			urls = append(urls, "http://"+n.api)
		}
	}
	return client.New(urls, testKey, nil)
}

func acquireAll(t *testing.T, c *client.Client, prefix string, count int) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		var l *client.Lock
		waitUntil(t, 20*time.Second, "acquire "+name, func() bool {
			var err error
			l, err = c.Acquire(context.Background(), name, client.AcquireOptions{Lifetime: time.Hour, RequestID: "rid-0123456789abcdef-" + name})
			return err == nil
		})
		out[name] = l.Fence()
	}
	return out
}

// Issue 9's scenario on real processes: a node that lost raft.db but kept
// its snapshots is started with a lagging node while the only other
// holder of the acknowledged tail is down. Nothing acknowledged may be
// lost: the guarded node withholds its vote, so the pair elects nobody,
// and the lagging node refuses stale reads until it has caught up.
func TestProcessTruncatedRaftDBLosesNothing(t *testing.T) {
	bin := buildBinary(t)
	pc := newProcCluster(t, bin)
	snapEvery := []string{"--snapshot-threshold", "50", "--snapshot-interval", "200ms"}
	for i := range pc.nodes {
		pc.start(i, snapEvery...)
	}
	l := pc.leader(0, 1, 2)
	z, g := (l+1)%3, (l+2)%3
	acquireAll(t, pc.client(0, 1, 2), "early", 200)
	// Z keeps its snapshots of the early locks but takes no more; G stops
	// with the early locks only.
	pc.stop(z)
	pc.start(z, "--snapshot-threshold", "1000000")
	waitUntil(t, 20*time.Second, "z back and caught up", func() bool { code, _ := pc.health(z); return code == http.StatusOK })
	pc.stop(g)
	late := acquireAll(t, pc.client(l), "late", 100)
	pc.stop(l)
	pc.stop(z)
	snaps, _ := filepath.Glob(filepath.Join(pc.nodes[z].dir, "snapshots", "*"))
	if len(snaps) == 0 {
		t.Fatal("z took no snapshot")
	}
	if err := os.Truncate(filepath.Join(pc.nodes[z].dir, "raft.db"), 0); err != nil {
		t.Fatal(err)
	}
	pc.start(g)
	pc.start(z)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, i := range []int{g, z} {
			if _, h := pc.health(i); h.IsLeader {
				t.Fatalf("%s was elected without the acknowledged tail", pc.nodes[i].id)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A node that has not caught up since it started refuses stale reads.
	req, _ := http.NewRequest(http.MethodGet, "http://"+pc.nodes[g].api+"/v1/locks/late-99?stale=true", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stale read from a node never caught up: %d, want 503", resp.StatusCode)
	}
	pc.start(l)
	c := pc.client(0, 1, 2)
	var max uint64
	for name, fence := range late {
		var got *client.LockInfo
		waitUntil(t, 20*time.Second, "read "+name, func() bool {
			got, err = c.Get(context.Background(), name)
			return err == nil
		})
		if got.FencingToken != fence {
			t.Fatalf("%s: fence %d, acknowledged %d", name, got.FencingToken, fence)
		}
		max = maxU(max, fence)
	}
	after := acquireAll(t, c, "after", 1)
	if after["after-0"] <= max {
		t.Fatalf("fencing token went backwards: %d after %d", after["after-0"], max)
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// damagedDir builds a single node's data directory in this process, then
// lets damage change it.
func damagedDir(t *testing.T, count int, snapshots int, damage func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	l := listen(t)
	cfg := cluster.Config{NodeID: "node1", RaftListener: l, DataDir: dir,
		Voters:           []cluster.Voter{{ID: "node1", Address: l.Addr().String()}},
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond,
		SnapshotThreshold: 1 << 20, SnapshotInterval: time.Hour, TrailingLogs: 4,
		Logger: hclog.NewNullLogger()}
	n, err := cluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "leader", n.IsLeader)
	per := count / max(snapshots, 1)
	for i := 0; i < count; i++ {
		if _, err := n.Acquire(context.Background(), cluster.AcquireRequest{Name: fmt.Sprint("l", i), Lifetime: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if snapshots > 0 && (i+1)%per == 0 {
			if err := n.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	damage(dir)
	return dir
}

// startDamaged runs the binary on dir and expects a prompt exit with a
// non-zero status and one clear line naming file and recovery.
func startDamaged(t *testing.T, bin, dir, file string) {
	t.Helper()
	raftAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "serve", "--node-id", "node1", "--listen", "127.0.0.1:0", "--http", "--api-key", testKey,
		"--raft-bind", raftAddr, "--voters", "node1="+raftAddr, "--data-dir", dir, "--log-level", "error")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("started on a damaged directory:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still running on a damaged directory:\n%s", out.String())
	}
	text := out.String()
	t.Logf("exit message:\n%s", text)
	if strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
		t.Fatalf("a stack trace instead of a message:\n%s", text)
	}
	var line string
	for _, ln := range strings.Split(text, "\n") {
		if strings.Contains(ln, "remove the node's data directory") {
			line = ln
		}
	}
	if line == "" || !strings.Contains(line, file) {
		t.Fatalf("no line naming %s and the recovery:\n%s", file, text)
	}
}

func TestProcessHalfLengthRaftDBExitsClearly(t *testing.T) {
	bin := buildBinary(t)
	dir := damagedDir(t, 3000, 0, func(dir string) {
		db := filepath.Join(dir, "raft.db")
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(db, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	})
	startDamaged(t, bin, dir, "raft.db")
}

func TestProcessCorruptSnapshotWithCompactedLogExitsClearly(t *testing.T) {
	bin := buildBinary(t)
	dir := damagedDir(t, 40, 2, func(dir string) {
		snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
		if len(snaps) != 2 {
			t.Fatalf("want two snapshots, have %v", snaps)
		}
		newest := snaps[len(snaps)-1]
		b, err := os.ReadFile(newest)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(newest, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	startDamaged(t, bin, dir, "snapshots")
}

// A follower whose disk is full falls far behind while the others carry
// on; it knows it (it still hears the leader's commit index) and refuses
// stale reads and health until space is freed, then catches up without a
// restart and answers them again.
func TestProcessFarBehindFollowerRefusesStaleReads(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs for the full-disk follower (%v); it runs as root on Linux", err)
	}
	t.Cleanup(func() { // after the processes have stopped (cleanups run last first)
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	bin := buildBinary(t)
	pc := newProcCluster(t, bin)
	pc.nodes[2].dir = filepath.Join(mnt, "node3")
	for i := range pc.nodes {
		pc.start(i)
	}
	if pc.leader(0, 1, 2) == 2 {
		// Move leadership off the node whose disk will fill: restart it.
		pc.stop(2)
		pc.leader(0, 1)
		pc.start(2)
	}
	waitUntil(t, 20*time.Second, "node3 caught up", func() bool { code, _ := pc.health(2); return code == http.StatusOK })
	filler := filepath.Join(mnt, "filler")
	fillFile(t, filler)
	c := pc.client(0, 1)
	// One acquire at a time: a lone proposal is one log entry, so the
	// follower falls more than StaleReadMaxBehind entries behind (with
	// concurrent proposals, group commit would pack them into fewer).
	for i := 0; i < 1300; i++ {
		name := fmt.Sprintf("behind-%d", i)
		if _, err := c.Acquire(context.Background(), name, client.AcquireOptions{Lifetime: time.Hour, RequestID: "rid-0123456789abcdef-" + name}); err != nil {
			t.Fatalf("acquire %s: %v", name, err)
		}
	}
	staleRead := func() (int, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+pc.nodes[2].api+"/v1/locks/behind-1299?stale=true", nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	waitUntil(t, 20*time.Second, "node3 refuses stale reads", func() bool { code, _ := staleRead(); return code == http.StatusServiceUnavailable })
	if code, h := pc.health(2); code != http.StatusServiceUnavailable || h.Status != "behind" {
		t.Fatalf("health of the full follower: %d %+v", code, h)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "node3 caught up again", func() bool { code, _ := staleRead(); return code == http.StatusOK })
	if _, h := staleRead(); h.Get("X-Doubledutch-Behind") == "" {
		t.Fatal("a stale read without its lag")
	}
}

func fillFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := len(chunk); n > 0; {
		if _, err := f.Write(chunk[:n]); err != nil {
			n /= 2
		}
	}
}
