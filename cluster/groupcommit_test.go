package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// Many concurrent proposals are packed: the leader proposes fewer entries
// than commands, and every caller gets its own result (its own lock, its
// own token), with fences unique and each at least its entry's index.
func TestConcurrentProposalsArePacked(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	e0, c0 := lead.ProposalStats()
	const callers = 64
	results := make([]fsm.Result, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			results[i], errs[i] = lead.Acquire(context.Background(), AcquireRequest{Name: fmt.Sprintf("pack-%d", i), Lifetime: time.Minute})
		}(i)
	}
	close(start)
	wg.Wait()
	e1, c1 := lead.ProposalStats()
	fences := map[uint64]bool{}
	for i, r := range results {
		if errs[i] != nil || r.Outcome != fsm.Granted || r.Lock.Name != fmt.Sprintf("pack-%d", i) {
			t.Fatalf("caller %d: %+v, %v", i, r, errs[i])
		}
		if fences[r.Lock.Fence] || r.Lock.Fence < r.Index {
			t.Fatalf("caller %d: fence %d (index %d) repeated or below its index", i, r.Lock.Fence, r.Index)
		}
		fences[r.Lock.Fence] = true
		if l, ok := lead.FSM().Get(r.Lock.Name); !ok || l.Token != r.Lock.Token {
			t.Fatalf("caller %d was answered with a token that does not hold its lock", i)
		}
	}
	entries, commands := e1-e0, c1-c0
	t.Logf("%d commands in %d entries", commands, entries)
	if commands < callers || entries >= commands {
		t.Errorf("%d commands in %d entries: nothing was packed", commands, entries)
	}
}

// A lone proposal is proposed at once (no batching timer). Reported, not
// asserted: the commit latency of a lone acquire with and without
// background load.
func TestLoneProposalLatency(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	measure := func() time.Duration {
		var d []time.Duration
		for i := 0; i < 30; i++ {
			t0 := time.Now()
			r, err := lead.Acquire(context.Background(), AcquireRequest{Name: "lone", Lifetime: time.Minute})
			if err != nil || r.Outcome != fsm.Granted {
				t.Fatalf("lone acquire: %+v %v", r, err)
			}
			d = append(d, time.Since(t0))
			if _, err := lead.Release(context.Background(), "lone", r.Lock.Token, ""); err != nil {
				t.Fatal(err)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	idle := measure()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("bg-%d", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := lead.Acquire(context.Background(), AcquireRequest{Name: name, Lifetime: time.Minute})
				if err == nil && r.Outcome == fsm.Granted {
					_, _ = lead.Release(context.Background(), name, r.Lock.Token, "")
				}
			}
		}(w)
	}
	loaded := measure()
	close(stop)
	wg.Wait()
	t.Logf("lone acquire commit p50: idle %v, with 16 busy proposers %v", idle, loaded)
}

// Issue 10 item 5: a proposal's context bounds it. An expired context is
// refused before anything is proposed; one that ends while the command is
// in Raft answers unknown_outcome (which a retry under the same request id
// resolves from the dedup table), and one still queued is withdrawn.
func TestProposalHonoursContext(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	lead := tc.leader()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lead.Acquire(done, AcquireRequest{Name: "ctx", Lifetime: time.Minute}); !errors.Is(err, ErrNotApplied) {
		t.Fatalf("expired context: %v, want ErrNotApplied", err)
	}
	// Cut the leader off from both followers: its entry cannot commit,
	// so the deadline passes with the command in flight.
	for _, n := range tc.live() {
		if n != lead {
			n.trans.Close()
		}
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel2()
	_, err := lead.Acquire(ctx, AcquireRequest{Name: "ctx", Lifetime: time.Minute, RequestID: "ctx-request-1"})
	// Unknown when the command was already in Raft; not applied when it
	// was still queued behind an entry that could not commit (withdrawn).
	inRaft, queued := errors.Is(err, ErrUnknownOutcome), errors.Is(err, ErrNotApplied)
	if inRaft == queued || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline with the leader cut off: %v, want exactly one of ErrUnknownOutcome, ErrNotApplied", err)
	}
}

// Fencing tokens strictly increase per lock in grant order, and never
// repeat across locks, with packing, snapshots, a follower restarted from
// its snapshot and a leader killed part-way (issue 11).
func TestFencesIncreaseUnderPackingAcrossRestartsAndSnapshots(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 64, 16, 100*time.Millisecond
	})
	const locks = 16
	var mu sync.Mutex
	fences := map[string][]uint64{}
	all := map[uint64]string{}
	round := func(rounds int) {
		var wg sync.WaitGroup
		for l := 0; l < locks; l++ {
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					lead := tc.leader()
					r, err := lead.Acquire(context.Background(), AcquireRequest{Name: name, Lifetime: time.Minute})
					if err != nil || r.Outcome != fsm.Granted {
						continue // an election under way; the lock is free again after expiry
					}
					mu.Lock()
					fences[name] = append(fences[name], r.Lock.Fence)
					if other, dup := all[r.Lock.Fence]; dup {
						t.Errorf("fence %d granted to %s and %s", r.Lock.Fence, other, name)
					}
					all[r.Lock.Fence] = name
					mu.Unlock()
					_, _ = lead.Release(context.Background(), name, r.Lock.Token, "")
				}
			}(fmt.Sprintf("f-%d", l))
		}
		wg.Wait()
	}
	round(20)
	for _, n := range tc.live() {
		_ = n.raft.Snapshot().Error()
	}
	lead := tc.leader()
	follower := (tc.index(lead) + 1) % 3
	tc.kill(follower)
	round(10)
	tc.restart(follower)
	tc.kill(tc.index(tc.leader()))
	round(10)
	entries, commands := uint64(0), uint64(0)
	for _, n := range tc.live() {
		e, c := n.ProposalStats()
		entries, commands = entries+e, commands+c
	}
	t.Logf("%d grants; %d commands in %d entries on the live nodes", len(all), commands, entries)
	for name, fs := range fences {
		for i := 1; i < len(fs); i++ {
			if fs[i] <= fs[i-1] {
				t.Fatalf("%s: fence %d after %d", name, fs[i], fs[i-1])
			}
		}
	}
	if len(all) < locks*20 {
		t.Fatalf("only %d grants", len(all))
	}
}
