package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// startErr starts node i again and returns the error Start gave.
func (tc *testCluster) startErr(i int) error {
	cfg := tc.cfgs[i]
	n, err := Start(cfg)
	if err == nil {
		_ = n.Kill()
		return nil
	}
	return err
}

// snapshotDirs lists node i's snapshot directories, newest first.
func snapshotDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dataDir, "snapshots", "*-*-*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(dirs) - 1; i >= 0; i-- {
		if !strings.HasSuffix(dirs[i], ".tmp") {
			out = append(out, dirs[i])
		}
	}
	return out
}

func wantDamaged(t *testing.T, err error, file string) {
	t.Helper()
	if !errors.Is(err, ErrDataDirDamaged) {
		t.Fatalf("start error %v, want ErrDataDirDamaged", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, file) || !strings.Contains(msg, recovery) || strings.Contains(msg, "\n") {
		t.Fatalf("start error is not one line naming %s and the recovery: %q", file, msg)
	}
	t.Logf("start refused: %s", msg)
}

// A raft.db cut to half its length stops the node with one clear line
// instead of bbolt's panic.
func TestHalfLengthRaftDBIsAClearError(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	fillLog(t, tc.leader(), 3000)
	tc.kill(0)
	db := filepath.Join(tc.cfgs[0].DataDir, "raft.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("raft.db is %d bytes; cutting it to %d", fi.Size(), fi.Size()/2)
	if err := os.Truncate(db, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	tc.cfgs[0].RaftListener = nil
	tc.cfgs[0].RaftBind = "127.0.0.1:0"
	wantDamaged(t, tc.startErr(0), "raft.db")
}

// A corrupt newest snapshot with the log compacted past the older one
// cannot be rebuilt: a clear error, not Raft's "log not found" panic.
func TestCorruptNewestSnapshotWithCompactedLogIsAClearError(t *testing.T) {
	tc := newTestCluster(t, 1, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 1<<20, 4, time.Hour
	})
	n := tc.nodes[0]
	for round := 0; round < 2; round++ {
		for i := 0; i < 20; i++ {
			tc.acquire(fmt.Sprintf("r%d-%d", round, i), time.Hour)
		}
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	tc.kill(0)
	snaps := snapshotDirs(t, tc.cfgs[0].DataDir)
	if len(snaps) != 2 {
		t.Fatalf("want two snapshots, have %v", snaps)
	}
	state := filepath.Join(snaps[0], "state.bin")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tc.cfgs[0].RaftListener = nil
	tc.cfgs[0].RaftBind = "127.0.0.1:0"
	wantDamaged(t, tc.startErr(0), "snapshots")
}

// Unfinished snapshot directories left by an earlier run are removed at
// start; Raft itself never removes them.
func TestStartRemovesUnfinishedSnapshots(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	tc.acquire("x", time.Hour)
	tc.kill(0)
	tmp := filepath.Join(tc.cfgs[0].DataDir, "snapshots", "2-100-1234.tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "state.bin"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc.restart(0)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("unfinished snapshot still there: %v", err)
	}
	tc.onEveryNode("x held", func(m *fsm.Machine) bool { _, ok := m.Get("x"); return ok })
}

// Issue 9's scenario: a node that lost raft.db but kept its snapshots has
// forgotten its votes and its log tail. Started with a lagging node while
// the only other holder of the tail is down, it must not vote the lagging
// node in; nothing acknowledged may be lost.
func TestLostRaftDBWithSnapshotsStartsGuarded(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 1<<20, 8, time.Hour
	})
	lead := tc.leader()
	li := tc.index(lead)
	z, g := (li+1)%3, (li+2)%3
	for i := 0; i < 50; i++ {
		tc.acquire(fmt.Sprintf("early-%d", i), time.Hour)
	}
	if err := tc.nodes[z].raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIdx := tc.nodes[z].FSM().AppliedIndex()
	waitFor(t, 10*time.Second, "lagging node has the snapshot's entries", func() bool {
		return tc.nodes[g].raft.LastIndex() >= snapIdx
	})
	tc.kill(g)
	var late []fsm.Result
	for i := 0; i < 100; i++ {
		late = append(late, tc.acquire(fmt.Sprintf("late-%d", i), time.Hour))
	}
	tc.kill(li)
	tc.kill(z)
	if err := os.Truncate(filepath.Join(tc.cfgs[z].DataDir, "raft.db"), 0); err != nil {
		t.Fatal(err)
	}
	zn := tc.restart(z)
	if !zn.guard.isGuarded() {
		t.Fatal("a node that lost raft.db but kept snapshots started unguarded")
	}
	tc.restart(g)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range tc.live() {
			if n.IsLeader() {
				_, held := n.FSM().Get("late-99")
				t.Fatalf("%s was elected without the acknowledged tail (late-99 held=%v)", n.ID(), held)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.restart(li)
	for _, r := range late {
		tc.onEveryNode(r.Lock.Name+" held", holds(r.Lock.Name, r.Lock.Fence))
	}
	if r := tc.acquire("after", time.Hour); r.Lock.Fence <= late[len(late)-1].Lock.Fence {
		t.Fatalf("fencing token went backwards: %d", r.Lock.Fence)
	}
}

// A wiped node that caught up by an installed snapshot keeps its
// bootstrap entry below the snapshot: a gap Raft never reads. It must
// start again normally (found by the chaos run's disk-loss fault).
func TestGapBelowInstalledSnapshotIsNotDamage(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 1<<20, 4, time.Hour
	})
	lead := tc.leader()
	fillLog(t, lead, 100)
	if err := lead.Snapshot(); err != nil {
		t.Fatal(err)
	}
	v := (tc.index(lead) + 1) % 3
	tc.kill(v)
	if err := os.RemoveAll(tc.cfgs[v].DataDir); err != nil {
		t.Fatal(err)
	}
	n := tc.restart(v)
	tc.acquire("after-install", time.Hour)
	tc.onEveryNode("after-install held", func(m *fsm.Machine) bool { _, ok := m.Get("after-install"); return ok })
	first, _ := n.store.FirstIndex()
	var e raft.Log
	gap := n.store.GetLog(first+1, &e) != nil
	if !gap {
		t.Fatalf("setup: no gap below the installed snapshot (log starts at %d)", first)
	}
	tc.kill(v)
	tc.cfgs[v].RaftListener, tc.cfgs[v].RaftBind = nil, "127.0.0.1:0"
	if err := tc.startErr(v); err != nil {
		t.Fatalf("a node with a gap below its snapshot refused to start: %v", err)
	}
}
