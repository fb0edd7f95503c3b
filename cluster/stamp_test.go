package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/fsm"
)

// TestOldTermStampIsNotApplied: a command whose stamp term differs from
// its entry's term is refused on every replica alike, and a stamp far
// ahead of the clock therefore cannot move it; the same command in its own
// term, or without the extension (older logs), is applied.
func TestOldTermStampIsNotApplied(t *testing.T) {
	n := &Node{appliedNotify: make(chan struct{})}
	n.fsm = fsm.New(fsm.Options{})
	tr := &appliedTracker{Machine: n.fsm, node: n}
	n.tracker = tr
	acq := func(name string, stamp int64) []byte {
		return fsm.Command{Kind: fsm.KindAcquire, Name: name, Lifetime: 1000, Stamp: stamp}.Encode()
	}
	logs := []*raft.Log{
		{Index: 2, Term: 3, Type: raft.LogCommand, Data: acq("own-term", 100), Extensions: stampTerm(3)},
		{Index: 3, Term: 5, Type: raft.LogCommand, Data: acq("stale", 1_000_000), Extensions: stampTerm(3)},
		{Index: 4, Term: 5, Type: raft.LogCommand, Data: acq("legacy", 200)},
	}
	out := tr.ApplyBatch(logs)
	if r, ok := out[0].(fsm.Result); !ok || r.Outcome != fsm.Granted {
		t.Fatalf("own-term command: %v", out[0])
	}
	if err, ok := out[1].(error); !ok || !errors.Is(err, ErrNotApplied) {
		t.Fatalf("stale command answered %v, want not applied", out[1])
	}
	if r, ok := out[2].(fsm.Result); !ok || r.Outcome != fsm.Granted {
		t.Fatalf("command without extension: %v", out[2])
	}
	if _, held := n.fsm.Get("stale"); held {
		t.Fatal("the stale command was applied")
	}
	if now := n.fsm.Now(); now >= 1_000_000 {
		t.Fatalf("the stale stamp moved the clock to %d", now)
	}
	if got := n.appliedIndex(); got != 4 {
		t.Fatalf("applied index %d, want 4", got)
	}
}

// TestFailedAnnounceIsRetried: the new leader's announce is retried until
// it lands, so followers learn where to redirect. Before, one failure
// left the URL unknown for the whole term.
func TestFailedAnnounceIsRetried(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.failAnnounces = 3 })
	lead := tc.leader()
	for _, n := range tc.live() {
		waitFor(t, 10*time.Second, n.ID()+" to learn the leader's URL", func() bool {
			li := n.Leader()
			return li.ID == lead.ID() && li.APIURL == lead.cfg.APIURL
		})
	}
}
