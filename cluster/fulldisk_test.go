package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// mountTmpfs mounts a small tmpfs for a full-disk test, or skips the test
// saying why (it needs root on Linux). It is unmounted at cleanup.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("SKIPPED: cannot mount a %s tmpfs for the full-disk test (%v); it runs as root on Linux", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file until the file system is full, and returns it.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	for n := len(chunk) / 2; n > 0; n /= 2 { // the last bytes too
		_, _ = f.Write(chunk[:n])
	}
	return path
}

// A full disk on a single node: writes fail as unknown outcome or not
// applied, never a false success; a failed snapshot leaves no directory;
// once space is freed the node recovers without a restart, and every
// acknowledged lock is there, also after a restart.
func TestFullDiskSingleNode(t *testing.T) {
	mnt := mountTmpfs(t, "24m")
	tc := newTestCluster(t, 1, func(c *Config) {
		c.DataDir = filepath.Join(mnt, c.NodeID)
		c.DiskLowBytes = 4 << 20
		c.SnapshotThreshold, c.SnapshotInterval = 1<<20, time.Hour
	})
	n := tc.leader()
	acked := map[string]uint64{}
	for i := 0; i < 50; i++ {
		r := tc.acquire(fmt.Sprint("before-", i), time.Hour)
		acked[r.Lock.Name] = r.Lock.Fence
	}
	if n.Lag().DiskLow {
		t.Fatal("disk low before it was filled")
	}
	filler := fillDisk(t, mnt)
	if l := n.Lag(); !l.DiskLow || l.DiskFree != 0 {
		t.Fatalf("full disk not reported: %+v", l)
	}
	// Bolt reuses free pages, so some writes may still succeed: each is
	// acknowledged and must survive. Keep writing until writes fail.
	failures, unknown := 0, 0
	for i := 0; i < 5000 && failures < 20; i++ {
		name := fmt.Sprint("during-", i)
		r, err := n.Acquire(context.Background(), AcquireRequest{Name: name, Lifetime: time.Hour, RequestID: name})
		switch {
		case err == nil && r.Outcome == fsm.Granted:
			acked[name] = r.Lock.Fence
		case errors.Is(err, ErrUnknownOutcome):
			unknown++
			failures++
		case errors.Is(err, ErrNotApplied), errors.Is(err, ErrNotLeader):
			failures++
		default:
			t.Fatalf("acquire on a full disk: %+v %v", r, err)
		}
	}
	if failures == 0 {
		t.Fatal("no write failed on a full disk")
	}
	t.Logf("full disk: %d acknowledged before failures, %d unknown outcomes, %d failures", len(acked), unknown, failures)
	if err := n.Snapshot(); err == nil {
		t.Log("a snapshot succeeded on the full disk")
	}
	if tmp, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, "snapshots", "*.tmp")); len(tmp) > 0 {
		t.Fatalf("a failed snapshot left %v", tmp)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var after fsm.Result
	waitFor(t, 30*time.Second, "recovery without a restart", func() bool {
		r, err := n.Acquire(context.Background(), AcquireRequest{Name: "after", Lifetime: time.Hour, RequestID: "after"})
		after = r
		return err == nil && r.Outcome == fsm.Granted
	})
	if n.Lag().DiskLow {
		t.Fatal("disk still reported low after freeing it")
	}
	acked["after"] = after.Lock.Fence
	check := func(m *fsm.Machine) error {
		for name, fence := range acked {
			if l, ok := m.Get(name); !ok || l.Fence != fence {
				return fmt.Errorf("%s: held=%v fence %d, acknowledged %d", name, ok, l.Fence, fence)
			}
		}
		return nil
	}
	if err := check(n.FSM()); err != nil {
		t.Fatal(err)
	}
	tc.kill(0)
	tc.restart(0)
	// A restarted node applies its log once it leads again.
	n = tc.leader()
	waitFor(t, 10*time.Second, "the log applied after the restart", func() bool { return n.FSM().AppliedIndex() >= after.Index })
	if err := check(n.FSM()); err != nil {
		t.Fatal(err)
	}
}

// A full disk on one follower does not stop the cluster; the follower
// knows it is behind (stale reads refused) and, once space is freed,
// catches up without a restart to the leader's exact state.
func TestFullDiskOnAFollower(t *testing.T) {
	mnt := mountTmpfs(t, "24m")
	tc := newTestCluster(t, 3, func(c *Config) {
		if c.NodeID == "n3" {
			c.DataDir = filepath.Join(mnt, c.NodeID)
		}
		c.StaleReadMaxBehind = 100
	})
	lead := tc.leaderNot("n3")
	f := tc.nodes[2]
	tc.acquire("before", time.Hour)
	filler := fillDisk(t, mnt)
	fillLog(t, lead, 1500) // the leader and the other follower carry on
	tc.acquire("during", time.Hour)
	waitFor(t, 10*time.Second, "the full follower knows it is behind", func() bool {
		return f.Lag().StaleReadErr() != nil
	})
	if l := f.Lag(); !l.DiskLow {
		t.Fatalf("full disk not reported: %+v", l)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the follower caught up with the leader's state", func() bool {
		li, ld := lead.FSM().Digest()
		fi, fd := f.FSM().Digest()
		return li == fi && ld == fd && f.Lag().StaleReadErr() == nil
	})
}
