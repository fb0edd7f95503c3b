package cluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/fsm"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

// TestBackupTotalLossRestore: back up a three-node cluster, destroy every
// node and data directory, restore a brand-new three-node cluster from the
// file: the locks are there with their fencing tokens and owners, no lock
// has lost lease time, and a new grant's token is larger than any before.
func TestBackupTotalLossRestore(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	a := tc.acquire("alpha", time.Hour)
	b := tc.acquire("beta", time.Hour)
	lead := tc.leader()
	var buf bytes.Buffer
	idx, err := lead.Backup(context.Background(), &buf)
	if err != nil || idx < b.Lock.Fence {
		t.Fatalf("backup: index %d err %v (beta fence %d)", idx, err, b.Lock.Fence)
	}
	backupNow := lead.FSM().Now()
	// Grants after the backup are lost with the cluster; their tokens
	// must not be issued again either.
	late := tc.acquire("late", time.Hour)
	tc.closeAll()
	for _, c := range tc.cfgs {
		if err := os.RemoveAll(c.DataDir); err != nil {
			t.Fatal(err)
		}
	}

	// A damaged file is refused before anything is written.
	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)/2] ^= 1
	if _, err := Restore(tc.cfgs[0], bytes.NewReader(bad)); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("restore of a damaged file: %v, want ErrBadBackup", err)
	}
	if _, err := Restore(tc.cfgs[0], bytes.NewReader(buf.Bytes()[:buf.Len()-1])); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("restore of a truncated file: %v, want ErrBadBackup", err)
	}
	for i, c := range tc.cfgs {
		info, err := Restore(c, bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("restore %s: %v", c.NodeID, err)
		}
		if info.Locks != 3-1 || info.BackupIndex != idx || len(info.Voters) != 3 {
			t.Fatalf("restore %d: %+v", i, info)
		}
	}
	// Restoring twice into the same directory is refused.
	if _, err := Restore(tc.cfgs[0], bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrExistingState) {
		t.Fatalf("second restore: %v, want ErrExistingState", err)
	}
	for i := range tc.cfgs {
		tc.restart(i)
	}
	lead = tc.leader()
	for _, want := range []fsm.Result{a, b} {
		l, held, now, err := lead.ReadLock(context.Background(), want.Lock.Name)
		if err != nil || !held || l.Fence != want.Lock.Fence || !l.Token.Equal(want.Lock.Token) || l.Deadline != want.Lock.Deadline {
			t.Fatalf("restored %s: %+v held %v err %v, want %+v", want.Lock.Name, l, held, err, want.Lock)
		}
		// The clock resumed from the backup's: the lock lost no time.
		if now < backupNow || now-backupNow > int64(time.Minute/time.Millisecond) {
			t.Fatalf("lease clock after restore %d, at backup %d", now, backupNow)
		}
	}
	if _, held, _, _ := lead.ReadLock(context.Background(), "late"); held {
		t.Fatal("a grant made after the backup came back")
	}
	c := tc.acquire("gamma", time.Minute)
	if c.Outcome != fsm.Granted || c.Lock.Fence <= late.Lock.Fence || c.Lock.Fence <= idx+RestoreGap {
		t.Fatalf("grant after restore: fence %d, before: backup %d, late grant %d", c.Lock.Fence, idx, late.Lock.Fence)
	}
}

// TestTransferLeadershipToNamedNode moves leadership to a chosen follower
// and reports followers' progress on the leader.
func TestTransferLeadershipToNamedNode(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.acquire("x", time.Minute)
	lead := tc.leader()
	var target *Node
	for _, n := range tc.live() {
		if n != lead {
			target = n
		}
	}
	waitFor(t, 5*time.Second, "every follower's progress known", func() bool {
		for _, p := range lead.Peers() {
			if !p.Known || (p.ID != lead.ID() && p.LastLogIndex == 0) {
				return false
			}
		}
		return true
	})
	if err := target.TransferLeadership(""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v, want ErrNotLeader", err)
	}
	if err := lead.TransferLeadership("nobody"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("transfer to an unknown node: %v, want ErrNotMember", err)
	}
	if err := lead.TransferLeadership(target.ID()); err != nil {
		t.Fatalf("transfer to %s: %v", target.ID(), err)
	}
	if got := tc.leader(); got != target {
		t.Fatalf("leader after transfer is %s, want %s", got.ID(), target.ID())
	}
	waitFor(t, 5*time.Second, "the change recorded", func() bool {
		recent, total := lead.LeaderChanges()
		return total >= 1 && len(recent) > 0 && recent[len(recent)-1].LeaderID == target.ID()
	})
}

// TestLagAcrossRestart: a node reports itself shutting down once killed,
// and after a restart behind the others reports a leader and no entries
// behind only once it has applied what it missed.
func TestLagAcrossRestart(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.acquire("x", time.Minute)
	lead := tc.leader()
	if l := lead.Lag(); !l.IsLeader || l.SinceContact != 0 || l.LeaderID != lead.ID() {
		t.Fatalf("leader's lag: %+v", l)
	}
	var f *Node
	for _, n := range tc.live() {
		if n != lead {
			f = n
		}
	}
	waitFor(t, 5*time.Second, "follower in contact", func() bool {
		l := f.Lag()
		return l.LeaderID == lead.ID() && l.SinceContact < time.Second && l.EntriesBehind == 0
	})
	i := tc.index(f)
	tc.kill(i)
	if l := f.Lag(); !l.ShuttingDown {
		t.Fatalf("killed node's lag: %+v", l)
	}
	tc.acquire("y", time.Minute)
	f = tc.restart(i)
	waitFor(t, 10*time.Second, "restarted follower caught up", func() bool {
		_, held := f.FSM().Get("y")
		l := f.Lag()
		return held && l.LeaderID != "" && l.EntriesBehind == 0 && !l.ShuttingDown
	})
}

// TestRestoreSingleNode restores into one node that then leads alone.
func TestRestoreSingleNode(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	a := tc.acquire("solo", time.Hour)
	var buf bytes.Buffer
	if _, err := tc.leader().Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	tc.closeAll()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := tc.cfgs[0]
	cfg.DataDir = filepath.Join(t.TempDir(), "fresh")
	cfg.Voters = nil
	cfg.RaftBind = l.Addr().String()
	if _, err := Restore(cfg, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	cfg.RaftListener = l
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	waitFor(t, 10*time.Second, "restored node leads", n.IsLeader)
	got, held, _, err := n.ReadLock(context.Background(), "solo")
	if err != nil || !held || got.Fence != a.Lock.Fence {
		t.Fatalf("restored lock: %+v held %v err %v", got, held, err)
	}
}

// TestOperatorEventsLoggedAtInfo: leader changes, membership changes and
// snapshots reach an info-level log.
func TestOperatorEventsLoggedAtInfo(t *testing.T) {
	var logs testlog.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "dd", Level: hclog.Info, Output: &logs})
	tc := newTestCluster(t, 3, func(c *Config) { c.Logger = logger })
	tc.acquire("x", time.Minute)
	lead := tc.leader()
	if err := lead.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	var follower *Node
	for _, n := range tc.live() {
		if n != lead {
			follower = n
		}
	}
	if err := lead.RemoveServer(follower.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "leader change, membership and snapshot lines", func() bool {
		s := logs.String()
		return strings.Contains(s, "[INFO]  dd.cluster: leader changed: leader="+lead.ID()) &&
			strings.Contains(s, "[INFO]  dd.cluster: membership: node removed: node="+follower.ID()) &&
			strings.Contains(s, "[INFO]  dd.raft: snapshot complete up to")
	})
}
