package chaos

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests run real clusters. They need Linux (127.0.0.11-13 on lo)
// and the go tool; -short skips them.

// workDir is kept when the test fails, for its logs, history and
// visualisation, and removed otherwise.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ddchaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("work dir kept: %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// runCtx is cancelled when the test ends; Run kills every node before it
// returns, and the kernel kills them if the test binary dies (Pdeathsig).
func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// TestSeededChaosRunPasses runs the workload under every fault kind (each
// at least once: kill -9 of the leader, SIGSTOP of the leader, partitions,
// a bridge, a rolling restart, leadership churn, a paused client, a wiped
// follower while the other lags, and a node that lost part of its disk)
// and requires every check to pass.
func TestSeededChaosRunPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	t.Parallel()
	start := time.Now()
	r, err := Run(runCtx(t), Config{Duration: 45 * time.Second, Seed: 7, Dir: workDir(t), Settle: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos run took %v\n%s", time.Since(start).Round(time.Second), r)
	if r.Failed() {
		t.Fatalf("the chaos run found %d violation(s)", len(r.Violations))
	}
	for _, kind := range []string{FaultKill, FaultStop, FaultPartition} {
		if !leaderHit(r, kind) {
			t.Errorf("no %s fault hit the leader", kind)
		}
	}
	for _, kind := range AllFaults {
		if !ran(r, kind) {
			t.Errorf("no %s fault ran", kind)
		}
	}
}

func ran(r *Report, kind string) bool {
	for _, f := range r.FaultLog {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

func leaderHit(r *Report, kind string) bool {
	for _, f := range r.FaultLog {
		if f.Kind == kind && f.Leader {
			return true
		}
	}
	return false
}

// TestBrokenServerIsCaught runs the deliberately broken server (its
// leader's lease clock runs three times too fast) and requires the run to
// report early expiry.
func TestBrokenServerIsCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run skipped in -short mode")
	}
	t.Parallel()
	dir := workDir(t)
	bin, err := BuildBinary(dir, "ddbroken")
	if err != nil && strings.Contains(err.Error(), "brokenClockSkew") {
		t.Skipf("the ddbroken hook (brokenClockSkew in cluster/clock.go and clock_sound.go) is not in this tree yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(runCtx(t), Config{Duration: 6 * time.Second, Seed: 3, Dir: dir, Bin: bin, Broken: true,
		Faults: []string{FaultClientPause}, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Failed() {
		t.Fatalf("the broken server passed every check:\n%s", r)
	}
	for _, c := range []string{CheckLinearizable, CheckBelief, CheckEarlyExpiry} {
		if !reportedIn(r.Violations, c) {
			t.Errorf("broken server: no %s violation reported", c)
		}
	}
	t.Logf("broken server caught: %d violations, linearizability %s", len(r.Violations), r.Check.Linearizable)
}

func reportedIn(vs []Violation, check string) bool {
	for _, v := range vs {
		if v.Check == check {
			return true
		}
	}
	return false
}
