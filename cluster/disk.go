package cluster

import (
	"time"
)

// diskLow reports whether free space is below the configured mark.
func (n *Node) diskLow(free uint64) bool { return free < n.cfg.DiskLowBytes }

// watchDisk logs a warning when free space falls below the low mark, and
// once more when it recovers: an operator learns before the disk is full
// (a full disk makes every write fail: one unknown_outcome, then 503s).
func (n *Node) watchDisk() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.DiskCheckInterval)
	defer t.Stop()
	low := false
	for {
		free, total, err := diskSpace(n.cfg.DataDir)
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
