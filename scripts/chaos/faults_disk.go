package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// wipe wipes a follower's data directory and restarts it while the other
// follower lags (cut off); the first time, and then half the time, the
// leader is then killed too, so the wiped node and the lagging one are
// alone together. The vote
// guard must keep the wiped node from electing the lagging one
// (docs/design.md, The vote guard); the history checks see any lost grant.
func (s *schedule) wipe(ctx context.Context) (string, bool) {
	leader, found := s.leaderOr(ctx)
	n := len(s.c.nodes)
	wiped := (leader + 1 + s.rng.Intn(n-1)) % n
	lagging := 3 - leader - wiped
	mode := s.cutMode()
	s.wipes++
	killLeader := s.rng.Float64() < 0.5 || s.wipes == 1
	s.c.net.Isolate(lagging, mode)
	lag := s.hold(ctx, 1000, 2000)
	w := s.c.nodes[wiped]
	err := w.kill()
	if rerr := os.RemoveAll(w.dataDir); err == nil {
		err = rerr
	}
	if serr := w.start(); err == nil {
		err = serr
	}
	catchUp := s.hold(ctx, 200, 1000)
	var lerr error
	if killLeader {
		lerr = s.c.nodes[leader].kill()
	}
	s.c.net.HealAll()
	alone := s.hold(ctx, 1000, 2000)
	if killLeader {
		if serr := s.c.nodes[leader].start(); lerr == nil {
			lerr = serr
		}
	}
	return fmt.Sprintf("node%d lagging (%s) for %v, then %s wiped and restarted (%s); leader %s killed=%v (%s) after %v, %v with the lagging node",
		lagging+1, mode, lag, w.id, errText(err), s.c.nodes[leader].id, killLeader, errText(lerr), catchUp, alone), found
}

// diskLoss kills a node, removes part of its data directory (raft.db, or
// its snapshots), and restarts it. Without raft.db the node has forgotten
// votes and log entries and starts guarded; without snapshots it replays
// its log, or, when the log was compacted past them, refuses to start with
// one clear line: then the harness does what that line says (removes the
// directory) and the node rejoins as a fresh member.
func (s *schedule) diskLoss(ctx context.Context) (string, bool) {
	leader, found := s.leaderOr(ctx)
	victim := s.rng.Intn(len(s.c.nodes))
	n := s.c.nodes[victim]
	// Losing raft.db while snapshots remain is the case that matters
	// (issue 9): it is chosen two times in three once snapshots exist.
	lost := []string{"raft.db", "raft.db", "snapshots"}[s.rng.Intn(3)]
	if snaps, _ := filepath.Glob(filepath.Join(n.dataDir, "snapshots", "*")); len(snaps) == 0 {
		lost = "raft.db and snapshots (none yet)"
	}
	err := n.kill()
	for _, f := range []string{"raft.db", "snapshots"} {
		if strings.HasPrefix(lost, f) || strings.Contains(lost, "none yet") {
			if rerr := os.RemoveAll(filepath.Join(n.dataDir, f)); err == nil {
				err = rerr
			}
		}
	}
	outcome := s.startOrRejoin(ctx, n)
	d := s.hold(ctx, 1000, 2000)
	return fmt.Sprintf("%s (leader=%v) lost %s: %s; %s; then %v", n.id, found && victim == leader, lost, errText(err), outcome, d),
		found && victim == leader
}

// startOrRejoin starts n and waits until it answers; if it exits first,
// saying its data directory is damaged, it follows the recovery the node
// names: remove the directory and start again as a fresh member.
func (s *schedule) startOrRejoin(ctx context.Context, n *node) string {
	if err := n.start(); err != nil {
		return "start: " + err.Error()
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !n.running() {
			if !strings.Contains(n.logTail(), "remove the node's data directory") {
				return fmt.Sprintf("exited at start (%v) without naming a recovery", n.exitError())
			}
			if err := os.RemoveAll(n.dataDir); err != nil {
				return "remove data directory: " + err.Error()
			}
			return "refused to start on a damaged directory; removed it, rejoined: " + errText(n.start())
		}
		if _, err := s.c.status(ctx, n.idx); err == nil {
			return "restarted"
		}
		_ = sleepCtx(ctx, 50*time.Millisecond)
	}
	return "restarted (not answering yet)"
}
