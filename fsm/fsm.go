// Package fsm owns the replicated lock state: the command envelope and its
// encoding, Apply, Snapshot and Restore.
//
// The state machine is pure and deterministic: it never reads a clock,
// never draws a random number and iterates only in sorted orders, so that
// replaying one log on any node, after a restart or a snapshot install,
// yields byte-identical state. Time comes only from the stamps the leader
// puts in commands (docs/design.md, The lease clock). It does no I/O but
// the snapshot sink and knows nothing of the network.
package fsm

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

// These constants decide Apply results, so every node must share them:
// changing one is a log-format change.
const (
	// MaxClockStep caps how far one command may move the lease clock
	// forward (ms). A leader that resumes from a long stall cannot expire
	// a lock early with one far-future stamp; the leader also proposes a
	// tick at least every MaxClockStep/2, so an idle cluster never lags.
	MaxClockStep = 10_000
	// DedupTTL is how long a request id is remembered, on the lease clock:
	// a repeat within it never acts twice.
	DedupTTL = 60 * 1000
	// DedupRate is the sustained rate of commands with request ids (per
	// second) the dedup table is sized for over DedupTTL.
	DedupRate = 16_000
	// MaxDedup bounds the live request ids: DedupRate over DedupTTL. When
	// full, a command with a new id is refused (TooManyIDs); a live id is
	// never forgotten before DedupTTL.
	MaxDedup = DedupRate * DedupTTL / 1000
	// MaxLocks bounds the number of held locks; an acquire of a free lock
	// past it is refused (TooManyLocks). It bounds the memory of the lock
	// table, of snapshots and of a full listing.
	MaxLocks = 250_000
	// btreeDegree suits a few million small items.
	btreeDegree = 32
)

// Options configures the node-local side of a Machine. Nothing here may
// change what Apply computes.
type Options struct {
	// OnApply, if set, is called after every applied command, outside the
	// state lock, in log order. It must not block: it runs on Raft's apply
	// goroutine.
	OnApply func(Result)
}

// Machine is the lock state machine. It implements raft.FSM and
// raft.BatchingFSM. Reads are safe from any goroutine.
type Machine struct {
	opts Options

	mu         sync.RWMutex
	byName     *btree.BTreeG[*Lock]
	byDeadline *btree.BTreeG[*Lock]
	leaseNow   int64
	applied    uint64
	lastFence  uint64            // the fence of the latest grant
	lockLimit  int               // MaxLocks; tests lower it
	nodes      map[string]string // node id -> advertised API URL
	dedup      dedupTable
}

var (
	_ raft.FSM         = (*Machine)(nil)
	_ raft.BatchingFSM = (*Machine)(nil)
)

func lessByName(a, b *Lock) bool { return a.Name < b.Name }

func lessByDeadline(a, b *Lock) bool {
	if a.Deadline != b.Deadline {
		return a.Deadline < b.Deadline
	}
	return a.Name < b.Name
}

// New returns an empty Machine.
func New(opts Options) *Machine {
	return &Machine{
		opts:       opts,
		lockLimit:  MaxLocks,
		byName:     btree.NewG(btreeDegree, lessByName),
		byDeadline: btree.NewG(btreeDegree, lessByDeadline),
		nodes:      map[string]string{},
		dedup:      newDedupTable(),
	}
}

// Apply applies one committed log entry and returns its Result. An entry
// that does not decode panics: skipping it would fork the replicas.
func (m *Machine) Apply(l *raft.Log) interface{} {
	return m.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies several committed entries under one lock acquisition.
func (m *Machine) ApplyBatch(logs []*raft.Log) []interface{} {
	// Decode first, outside the state lock: readers wait only for Apply.
	entries := make([][]Command, len(logs))
	packed := make([]bool, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			// Raft only hands commands to the FSM; anything else is a
			// no-op that still occupies its index.
			continue
		}
		var err error
		if entries[i], packed[i], err = DecodeEntry(l.Data); err != nil {
			panic(fmt.Sprintf("fsm: log index %d: %v", l.Index, err))
		}
	}
	out := make([]interface{}, len(logs))
	m.mu.Lock()
	for i, cmds := range entries {
		switch {
		case cmds == nil:
		case !packed[i]:
			out[i] = m.apply(logs[i].Index, cmds[0])
		default:
			rs := make(Results, len(cmds))
			for j, c := range cmds {
				rs[j] = m.apply(logs[i].Index, c)
			}
			out[i] = rs
		}
	}
	m.mu.Unlock()
	if m.opts.OnApply != nil {
		for _, o := range out {
			switch r := o.(type) {
			case Result:
				m.opts.OnApply(r)
			case Results:
				for _, one := range r {
					m.opts.OnApply(one)
				}
			}
		}
	}
	return out
}

// ApplyCommand applies a decoded command as if it were the entry at index.
// Tests and benchmarks use it to drive the machine without Raft.
func (m *Machine) ApplyCommand(index uint64, c Command) Result {
	m.mu.Lock()
	r := m.apply(index, c)
	m.mu.Unlock()
	if m.opts.OnApply != nil {
		m.opts.OnApply(r)
	}
	return r
}

func (m *Machine) apply(index uint64, c Command) Result {
	m.applied = index
	m.advanceClock(c.Stamp)
	freed := m.expireDue()
	m.dedup.expire(m.leaseNow)

	key := dedupKey(c)
	var r Result
	switch first, seen := m.dedup.get(key); {
	case seen:
		r = m.replay(c, first)
		r.Duplicate = true
	case key != "" && m.dedup.full():
		r = Result{Outcome: TooManyIDs, Index: index}
	default:
		r = m.act(index, c)
		if key != "" && acted(r.Outcome) {
			m.dedup.put(&dedupEntry{key: key, expires: m.leaseNow + DedupTTL,
				outcome: r.Outcome, index: index, fence: r.Lock.Fence})
		}
	}
	r.Now = m.leaseNow
	if len(freed) > 0 {
		r.Freed = append(freed, r.Freed...)
	}
	return r
}

// act applies a command that is not a repeat.
func (m *Machine) act(index uint64, c Command) Result {
	var r Result
	switch c.Kind {
	case KindAcquire:
		r = m.acquire(index, c)
	case KindRelease:
		r = m.release(c)
	case KindRefresh:
		r = m.refresh(c)
	case KindTick:
		r = Result{Outcome: Ticked}
	case KindAnnounce:
		m.nodes[c.NodeID] = c.APIURL
		r = Result{Outcome: Announced}
	}
	r.Index = index
	return r
}

// advanceClock moves leaseNow to the stamp, never backwards and never more
// than MaxClockStep at once.
func (m *Machine) advanceClock(stamp int64) {
	if stamp <= m.leaseNow {
		return
	}
	if stamp-m.leaseNow > MaxClockStep {
		m.leaseNow += MaxClockStep
		return
	}
	m.leaseNow = stamp
}

// expireDue frees every lock whose deadline the clock has reached, earliest
// deadline first (ties by name). Each one costs O(log n).
func (m *Machine) expireDue() []string {
	var freed []string
	for {
		l, ok := m.byDeadline.Min()
		if !ok || l.Deadline > m.leaseNow {
			return freed
		}
		m.byDeadline.DeleteMin()
		m.byName.Delete(l)
		freed = append(freed, l.Name)
	}
}

func (m *Machine) acquire(index uint64, c Command) Result {
	if cur, held := m.byName.Get(&Lock{Name: c.Name}); held {
		if cur.Token.Equal(c.Token) {
			// The same grant proposed twice: answer it again, act once.
			return Result{Outcome: Granted, Lock: *cur}
		}
		holder := *cur
		holder.Token = Token{}
		return Result{Outcome: Busy, Lock: holder}
	}
	if m.byName.Len() >= m.lockLimit {
		return Result{Outcome: TooManyLocks}
	}
	// The fence is the index unless an earlier command of this packed
	// entry (or a packed entry before) already used it: tokens stay
	// strictly increasing in grant order, and equal to the index for
	// one grant per entry, as before packing.
	m.lastFence = max(m.lastFence+1, index)
	l := &Lock{
		Name:      c.Name,
		Token:     c.Token,
		Owner:     c.Owner,
		Fence:     m.lastFence,
		GrantedAt: c.Stamp,
		Lifetime:  c.Lifetime,
		Deadline:  addSaturating(c.Stamp, c.Lifetime),
	}
	m.byName.ReplaceOrInsert(l)
	m.byDeadline.ReplaceOrInsert(l)
	return Result{Outcome: Granted, Lock: *l}
}

func (m *Machine) release(c Command) Result {
	cur, held := m.byName.Get(&Lock{Name: c.Name})
	if !held || !cur.Token.Equal(c.Token) {
		return Result{Outcome: NotHeld}
	}
	m.byName.Delete(cur)
	m.byDeadline.Delete(cur)
	return Result{Outcome: Released, Lock: Lock{Name: cur.Name, Fence: cur.Fence}, Freed: []string{cur.Name}}
}

func (m *Machine) refresh(c Command) Result {
	cur, held := m.byName.Get(&Lock{Name: c.Name})
	if !held || !cur.Token.Equal(c.Token) {
		return Result{Outcome: NotHeld}
	}
	// A refresh never moves a deadline earlier: an older refresh landing
	// late must not take back time a newer one already promised.
	next := *cur
	if d := addSaturating(c.Stamp, c.Lifetime); d > cur.Deadline {
		next.Lifetime = c.Lifetime
		next.Deadline = d
	}
	m.byDeadline.Delete(cur)
	m.byName.ReplaceOrInsert(&next)
	m.byDeadline.ReplaceOrInsert(&next)
	return Result{Outcome: Refreshed, Lock: next}
}

func addSaturating(a, b int64) int64 {
	if b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

// Get returns the lock held under name, if any.
func (m *Machine) Get(name string) (Lock, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.byName.Get(&Lock{Name: name})
	if !ok {
		return Lock{}, false
	}
	return *l, true
}

// List returns up to limit locks whose names start with prefix and sort
// after the name after, in name order. limit <= 0 means no limit.
func (m *Machine) List(prefix, after string, limit int) []Lock {
	m.mu.RLock()
	defer m.mu.RUnlock()
	start := prefix
	if after > start {
		start = after
	}
	var out []Lock
	m.byName.AscendGreaterOrEqual(&Lock{Name: start}, func(l *Lock) bool {
		if !strings.HasPrefix(l.Name, prefix) {
			return false
		}
		if l.Name == after {
			return true
		}
		out = append(out, *l)
		return limit <= 0 || len(out) < limit
	})
	return out
}

// Len is the number of held locks.
func (m *Machine) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byName.Len()
}

// Now is the applied lease clock (cluster ms).
func (m *Machine) Now() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.leaseNow
}

// AppliedIndex is the index of the last applied command.
func (m *Machine) AppliedIndex() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.applied
}

// NextDeadline is the earliest deadline of any held lock.
func (m *Machine) NextDeadline() (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.byDeadline.Min()
	if !ok {
		return 0, false
	}
	return l.Deadline, true
}

// DueBy lists, earliest deadline first, up to limit held locks that a
// command stamped stamp would expire (the clock moves at most
// MaxClockStep per command). The proposer hands these to waiters in the
// same entry that expires them.
func (m *Machine) DueBy(stamp int64, limit int) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	clock := m.leaseNow
	if stamp > clock {
		clock = min(stamp, clock+MaxClockStep)
	}
	var out []string
	m.byDeadline.Ascend(func(l *Lock) bool {
		if l.Deadline > clock || len(out) >= limit {
			return false
		}
		out = append(out, l.Name)
		return true
	})
	return out
}

// APIURL is the API URL the node announced, or "".
func (m *Machine) APIURL(nodeID string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nodes[nodeID]
}

// Nodes lists the announced nodes and their API URLs, sorted by id.
func (m *Machine) Nodes() []NodeURL {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sortedNodes(m.nodes)
}

// NodeURL is a node id and the API URL it announced.
type NodeURL struct {
	ID     string
	APIURL string
}

func sortedNodes(nodes map[string]string) []NodeURL {
	out := make([]NodeURL, 0, len(nodes))
	for id, u := range nodes {
		out = append(out, NodeURL{ID: id, APIURL: u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Snapshot freezes the state in O(1) for the lock table (a copy-on-write
// clone) and O(k) for the k remembered request ids. Persist does the work.
func (m *Machine) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.freeze(), nil
}

// Restore replaces the whole state with a persisted snapshot.
func (m *Machine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readState(rc)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.byName, m.byDeadline = st.byName, st.byDeadline
	m.leaseNow, m.applied, m.lastFence = st.leaseNow, st.applied, st.lastFence
	m.nodes, m.dedup = st.nodes, st.dedup
	m.mu.Unlock()
	return nil
}
