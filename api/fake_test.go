package api

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// fakeCluster implements Cluster on a real fsm.Machine driven through
// ApplyCommand, so lock semantics (busy, not held, expiry, dedup, fencing)
// are the real ones. Its lease clock is real time; it proposes an expiry
// tick when the earliest deadline comes due, as the leader does.
type fakeCluster struct {
	mu     sync.Mutex // serializes applies, like Raft's apply goroutine
	m      *fsm.Machine
	index  uint64
	start  time.Time
	timer  *time.Timer
	closed bool
	grants []string // owners of every Granted result, in log order
	frees  []string // names freed, in log order

	subMu sync.Mutex
	subs  map[int]func(cluster.Event)
	next  int

	stateMu   sync.Mutex
	leader    cluster.LeaderInfo
	staleness time.Duration
	lag       *cluster.Lag // when set, what Lag reports
	// onPropose, if set, runs before a proposal is applied; a non-nil
	// error is returned instead of applying (it may also block).
	onPropose func(ctx context.Context, c fsm.Command) error
	// afterApply, if set, runs after a proposal was applied, before the
	// proposer sees the result (it may block, like a descheduled caller).
	afterApply func(c fsm.Command, r fsm.Result)

	proposals atomic.Int64

	membersMu sync.Mutex
	members   map[string]string // AddVoter/RemoveServer calls: id -> address
}

const fakeSelf = "n1"

func newFake() *fakeCluster {
	f := &fakeCluster{start: time.Now(), subs: map[int]func(cluster.Event){}}
	f.m = fsm.New(fsm.Options{OnApply: f.onApply})
	f.leader = cluster.LeaderInfo{ID: fakeSelf, APIURL: "http://n1.test:8001", IsSelf: true}
	return f
}

func (f *fakeCluster) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
}

// now is the cluster clock in ms. It starts at the FSM's initial lease
// clock, 0, as a new cluster's does (the FSM caps any step at
// fsm.MaxClockStep, so a far offset would stall it).
func (f *fakeCluster) now() int64 { return time.Since(f.start).Milliseconds() }

func (f *fakeCluster) setLeader(li cluster.LeaderInfo) {
	f.stateMu.Lock()
	was := f.leader.IsSelf
	f.leader = li
	f.stateMu.Unlock()
	if was != li.IsSelf {
		f.emit(cluster.Event{Kind: cluster.EventLeadership, IsLeader: li.IsSelf})
	}
	f.emit(cluster.Event{Kind: cluster.EventLeaderChanged})
}

func (f *fakeCluster) setOnPropose(fn func(ctx context.Context, c fsm.Command) error) {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	f.onPropose = fn
}

func (f *fakeCluster) isLeader() bool { return f.Leader().IsSelf }

// propose applies c as the next entry, as a leader would after commit.
func (f *fakeCluster) propose(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	f.proposals.Add(1)
	if !f.isLeader() {
		return fsm.Result{}, cluster.ErrNotLeader
	}
	f.stateMu.Lock()
	hook, after := f.onPropose, f.afterApply
	f.stateMu.Unlock()
	if hook != nil {
		if err := hook(ctx, c); err != nil {
			return fsm.Result{}, err
		}
	}
	res := f.apply(c)
	if after != nil {
		after(c, res)
	}
	return res, nil
}

func (f *fakeCluster) apply(c fsm.Command) fsm.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	c.Stamp = f.now()
	res := f.m.ApplyCommand(f.index, c)
	if res.Outcome == fsm.Granted && !res.Duplicate {
		f.grants = append(f.grants, res.Lock.Owner)
	}
	f.frees = append(f.frees, res.Freed...)
	f.armTick()
	return res
}

// armTick schedules an expiry tick at the earliest deadline. f.mu held.
func (f *fakeCluster) armTick() {
	if f.timer != nil {
		f.timer.Stop()
	}
	d, ok := f.m.NextDeadline()
	if !ok || f.closed {
		return
	}
	wait := time.Duration(max(d-f.now(), 0)) * time.Millisecond
	f.timer = time.AfterFunc(wait, func() {
		f.mu.Lock()
		closed := f.closed
		f.mu.Unlock()
		if !closed {
			f.apply(fsm.Command{Kind: fsm.KindTick})
		}
	})
}

func (f *fakeCluster) onApply(r fsm.Result) {
	if len(r.Freed) > 0 {
		f.emit(cluster.Event{Kind: cluster.EventFreed, Names: r.Freed})
	}
}

func (f *fakeCluster) emit(ev cluster.Event) {
	f.subMu.Lock()
	fns := make([]func(cluster.Event), 0, len(f.subs))
	for _, fn := range f.subs {
		fns = append(fns, fn)
	}
	f.subMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

func (f *fakeCluster) grantedOwners() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.grants...)
}

func (f *fakeCluster) Acquire(ctx context.Context, req cluster.AcquireRequest) (fsm.Result, error) {
	var tok fsm.Token
	_, _ = rand.Read(tok[:])
	return f.propose(ctx, fsm.Command{Kind: fsm.KindAcquire, Name: req.Name, Token: tok,
		Lifetime: req.Lifetime.Milliseconds(), Owner: req.Owner, RequestID: req.RequestID})
}

func (f *fakeCluster) Release(ctx context.Context, name string, token fsm.Token, requestID string) (fsm.Result, error) {
	return f.propose(ctx, fsm.Command{Kind: fsm.KindRelease, Name: name, Token: token, RequestID: requestID})
}

func (f *fakeCluster) Refresh(ctx context.Context, name string, token fsm.Token, lifetime time.Duration, requestID string) (fsm.Result, error) {
	return f.propose(ctx, fsm.Command{Kind: fsm.KindRefresh, Name: name, Token: token,
		Lifetime: lifetime.Milliseconds(), RequestID: requestID})
}

func (f *fakeCluster) ReadLock(ctx context.Context, name string) (fsm.Lock, bool, int64, error) {
	if !f.isLeader() {
		return fsm.Lock{}, false, 0, cluster.ErrNotLeader
	}
	l, ok := f.m.Get(name)
	return l, ok, f.now(), nil
}

func (f *fakeCluster) ListLocks(ctx context.Context, prefix, after string, limit int) ([]fsm.Lock, int64, error) {
	if !f.isLeader() {
		return nil, 0, cluster.ErrNotLeader
	}
	return f.m.List(prefix, after, limit), f.now(), nil
}

func (f *fakeCluster) StaleReadLock(name string) (fsm.Lock, bool, int64, time.Duration) {
	l, ok := f.m.Get(name)
	return l, ok, f.now(), f.stale()
}

func (f *fakeCluster) StaleListLocks(prefix, after string, limit int) ([]fsm.Lock, int64, time.Duration) {
	return f.m.List(prefix, after, limit), f.now(), f.stale()
}

// Lag reports the fake's staleness; the fake is always caught up unless
// a test set lag.
func (f *fakeCluster) Lag() cluster.Lag {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	if f.lag != nil {
		return *f.lag
	}
	return cluster.Lag{LeaderID: f.leader.ID, IsLeader: f.leader.IsSelf, Contacted: true, SinceContact: f.staleness,
		CaughtUp: true, MaxBehind: 1000}
}

func (f *fakeCluster) stale() time.Duration {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return f.staleness
}

func (f *fakeCluster) ClusterNow() (int64, error) {
	if !f.isLeader() {
		return 0, cluster.ErrNotLeader
	}
	return f.now(), nil
}

func (f *fakeCluster) Leader() cluster.LeaderInfo {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	return f.leader
}

func (f *fakeCluster) State() cluster.State {
	li := f.Leader()
	rs := "Follower"
	if li.IsSelf {
		rs = "Leader"
	}
	idx := f.m.AppliedIndex()
	return cluster.State{NodeID: fakeSelf, RaftState: rs, Leader: li, Term: 3,
		CommitIndex: idx, AppliedIndex: idx, LastIndex: idx, LeaseNow: f.m.Now(),
		LastContact: f.stale(), Servers: []cluster.ServerInfo{
			{ID: fakeSelf, Address: "127.0.0.1:7001", Suffrage: "Voter", Leader: li.IsSelf},
		}}
}

func (f *fakeCluster) Subscribe(fn func(cluster.Event)) func() {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	id := f.next
	f.next++
	f.subs[id] = fn
	return func() {
		f.subMu.Lock()
		defer f.subMu.Unlock()
		delete(f.subs, id)
	}
}

func (f *fakeCluster) Recall(kind fsm.Kind, name, requestID string) (fsm.Result, bool) {
	return f.m.Recall(fsm.Command{Kind: kind, Name: name, RequestID: requestID})
}

// SetHandoff is a no-op: the fake applies one command per proposal, so the
// waiting layer's fallback (a turn on the freed event) serves its waiters.
// cluster/locking's tests cover the one-commit handoff on a real cluster.
func (f *fakeCluster) SetHandoff(cluster.Handoff) {}

var _ Cluster = (*fakeCluster)(nil)

// Short names for hook signatures in tests.
type (
	ctxT = context.Context
	cmdT = fsm.Command
)

// fakeDeadHost is a Raft host the fake treats as unreachable: adding it
// without cluster.Force is refused as the real check would refuse it.
const fakeDeadHost = "dead.invalid"

func (f *fakeCluster) AddVoter(id, addr string, opts ...cluster.MembershipOption) error {
	f.membersMu.Lock()
	defer f.membersMu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	if host == fakeDeadHost && !slices.Contains(opts, cluster.Force) {
		return fmt.Errorf("%w: 1 of 2 voters answer", cluster.ErrQuorumAtRisk)
	}
	if f.members == nil {
		f.members = map[string]string{}
	}
	f.members[id] = addr
	return nil
}

func (f *fakeCluster) RemoveServer(id string, _ ...cluster.MembershipOption) error {
	f.membersMu.Lock()
	defer f.membersMu.Unlock()
	if _, ok := f.members[id]; !ok && id != fakeSelf {
		return fmt.Errorf("%w: %q", cluster.ErrNotMember, id)
	}
	delete(f.members, id)
	return nil
}

func (f *fakeCluster) StateDigest() (uint64, string) {
	idx, d := f.m.Digest()
	return idx, fmt.Sprintf("%x", d)
}
