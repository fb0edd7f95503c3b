package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// diskFullBytes: below this much free space the node treats its disk as
// full and slows its own elections (dampElections).
const diskFullBytes = 1 << 20

// dampFactor stretches the heartbeat and election timeouts while the disk
// is full.
const dampFactor = 10

// diskLow reports whether free space is below the configured mark.
func (n *Node) diskLow(free uint64) bool { return free < n.cfg.DiskLowBytes }

// watchDisk logs a warning when free space falls below the low mark, and
// once more when it recovers: an operator learns before the disk is full
// (a full disk makes every write fail: one unknown_outcome, then 503s).
func (n *Node) watchDisk() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.DiskCheckInterval)
	defer t.Stop()
	low, full := false, false
	for {
		free, total, err := diskSpace(n.cfg.DataDir)
		if err == nil && (free < diskFullBytes) != full {
			full = !full
			n.dampElections(full)
			// While full, look often: restoring the timing promptly is
			// what makes recovery quick once space is freed.
			t.Reset(n.cfg.DiskCheckInterval)
			if full {
				t.Reset(min(n.cfg.DiskCheckInterval, time.Second))
			}
		}
		switch {
		case err != nil:
			n.log.Warn("cannot read free disk space", "error", err)
		case n.diskLow(free) && !low:
			low = true
			n.log.Warn("disk space low in the data directory", "free_bytes", free, "total_bytes", total, "low_mark_bytes", n.cfg.DiskLowBytes)
		case !n.diskLow(free) && low:
			low = false
			n.log.Info("disk space recovered", "free_bytes", free)
		}
		select {
		case <-t.C:
		case <-n.closing:
			return
		}
	}
}

// dampElections slows this node's elections while its disk is full, or
// restores them. A leader that cannot store its own entries steps down,
// and on its own (a single node) it would win the next election at once
// and step down again, every election timeout: a spin of term changes and
// log lines that helps nobody. With the timeouts stretched tenfold the node
// also sends heartbeats less often as a leader, so peers with room replace
// it sooner. Not campaigning is always safe; the cost is a slower election
// while the disk stays full.
func (n *Node) dampElections(full bool) {
	base := n.raftConfig()
	k := time.Duration(1)
	if full {
		k = dampFactor
		n.log.Warn("disk full: slowing this node's elections until space is freed", "factor", dampFactor)
	} else {
		n.log.Info("disk has room again: election timing restored")
	}
	err := n.raft.ReloadConfig(raft.ReloadableConfig{
		TrailingLogs:      base.TrailingLogs,
		SnapshotInterval:  base.SnapshotInterval,
		SnapshotThreshold: base.SnapshotThreshold,
		HeartbeatTimeout:  base.HeartbeatTimeout * k,
		ElectionTimeout:   base.ElectionTimeout * k,
	})
	if err != nil {
		n.log.Warn("could not change election timing", "error", err)
	}
}
