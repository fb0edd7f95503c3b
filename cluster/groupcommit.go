package cluster

import (
	"fmt"
	"github.com/hashicorp/raft"
	"sync"
	"sync/atomic"

	"github.com/doubledutch/doubledutch/fsm"
)

// Group commit (issue 11).
//
// Every proposal goes through one queue. While entries are in flight (at
// most maxInFlight), the commands that arrive collect in the queue; when
// one commits, the next entry takes all of them (up to fsm.MaxPackCount commands and
// fsm.MaxPackBytes bytes) in arrival order. There is no timer: a lone
// command finds nothing in flight and is proposed at once, so it pays
// nothing for packing, and under load one entry, one fsync and one round
// of replication serve many commands.
//
// The entry is stamped once, when it is sealed: the stamp is a leader
// clock reading taken after every packed command reached the leader, as
// docs/design.md, The lease clock, requires of each stamp.
//
// Handing over in one commit: when sealing an entry, the proposer asks the
// Handoff (the waiting layer) for the next holder of every lock the entry
// frees, by a release it carries or by expiry at its stamp, and packs an
// acquire for that waiter right after the release (or at the front, for
// expiries). The next holder is then granted by the very entry that frees
// the lock: same commit, same log index.

// maxInFlight is how many entries the proposer keeps in Raft at once;
// while they commit, the next entry collects what arrives, so batching
// follows the commit latency with no tuning. Two lets the leader write one
// entry while the previous one is replicated (measured: about +20 % pairs/s
// at 64 proposers over one, noisy; more did not help).
const maxInFlight = 2

// maxHandoffsPerEntry bounds the expiry grants one entry carries.
const maxHandoffsPerEntry = 256

// Handoff is the waiting layer's part in group commit. The proposer calls
// it while sealing an entry, on the leader only.
type Handoff interface {
	// Next returns an acquire for the head waiter of name, or false when
	// nobody waits (or a grant to name's queue is already in flight).
	// deliver is called exactly once with the acquire's result, or with
	// the error of the whole entry.
	Next(name string) (req AcquireRequest, deliver func(fsm.Result, error), ok bool)
}

// SetHandoff installs h (nil removes it). The api's waiting layer calls it
// once at start.
func (n *Node) SetHandoff(h Handoff) {
	if h == nil {
		n.handoff.Store(nil)
		return
	}
	n.handoff.Store(&h)
}

// proposal is one command waiting for its entry.
type proposal struct {
	cmd  fsm.Command
	done chan struct{}
	res  fsm.Result
	err  error
	// taken is set once the proposal is sealed into an entry; after that
	// it can no longer be withdrawn.
	taken bool
}

func (p *proposal) finish(r fsm.Result, err error) {
	p.res, p.err = r, err
	close(p.done)
}

// proposer packs queued proposals into entries.
type proposer struct {
	n        *Node
	mu       sync.Mutex
	queue    []*proposal
	inflight int
	// entries and commands count what was proposed, for tests and
	// benchmarks that check packing.
	entries, commands atomic.Uint64
}

func (b *proposer) submit(p *proposal) {
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.inflight >= maxInFlight {
		b.mu.Unlock()
		return
	}
	b.inflight++
	batch := b.takeLocked()
	b.mu.Unlock()
	go b.run(batch)
}

// withdraw removes p if it is still queued.
func (b *proposer) withdraw(p *proposal) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.taken {
		return false
	}
	for i, q := range b.queue {
		if q == p {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			p.taken = true
			return true
		}
	}
	return false
}

// takeLocked removes the next entry's proposals from the queue. mu held.
func (b *proposer) takeLocked() []*proposal {
	size, n := 0, 0
	for n < len(b.queue) && n < fsm.MaxPackCount-maxHandoffsPerEntry/2 {
		c := b.queue[n].cmd
		sz := 48 + len(c.Name) + len(c.Owner) + len(c.RequestID) + len(c.APIURL)
		if n > 0 && size+sz > fsm.MaxPackBytes {
			break
		}
		size += sz
		n++
	}
	batch := make([]*proposal, n)
	copy(batch, b.queue)
	for _, p := range batch {
		p.taken = true
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// run commits batches until the queue is empty.
func (b *proposer) run(batch []*proposal) {
	for {
		b.commit(batch)
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		batch = b.takeLocked()
		b.mu.Unlock()
	}
}

// slot is one command of an entry and who receives its result.
type slot struct {
	cmd     fsm.Command
	p       *proposal
	deliver func(fsm.Result, error)
}

func (s slot) finish(r fsm.Result, err error) {
	if s.p != nil {
		s.p.finish(r, err)
	} else {
		s.deliver(r, err)
	}
}

// commit stamps, seals and proposes one entry, then hands every command
// its own result.
func (b *proposer) commit(batch []*proposal) {
	n := b.n
	t := n.leading.Load()
	stamp, err := n.clock.now()
	if err == nil && t == nil {
		err = ErrNotLeader
	}
	if err != nil {
		for _, p := range batch {
			p.finish(fsm.Result{}, err)
		}
		return
	}
	slots := b.seal(batch, stamp)
	cmds := make([]fsm.Command, len(slots))
	for i := range slots {
		slots[i].cmd.Stamp = stamp
		cmds[i] = slots[i].cmd
	}
	b.entries.Add(1)
	b.commands.Add(uint64(len(cmds)))
	// The stamp's term travels with the entry (see stamp.go).
	f, err := n.applyPastTransfer(raft.Log{Data: fsm.EncodeEntry(cmds), Extensions: stampTerm(t.term)}, t)
	if err == nil {
		if refused, ok := f.Response().(error); ok {
			err = refused // a stale stamp: not applied anywhere
		}
	}
	if err != nil {
		for _, s := range slots {
			s.finish(fsm.Result{}, err)
		}
		return
	}
	results, err := resultsOf(f.Response(), len(slots))
	for i, s := range slots {
		if err != nil {
			s.finish(fsm.Result{}, err)
		} else {
			s.finish(results[i], nil)
		}
	}
}

// resultsOf unpacks the FSM's answer to an entry of n commands.
func resultsOf(resp interface{}, n int) ([]fsm.Result, error) {
	switch r := resp.(type) {
	case fsm.Result:
		if n == 1 {
			return []fsm.Result{r}, nil
		}
	case fsm.Results:
		if len(r) == n {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: unexpected FSM response %T for %d commands", ErrUnknownOutcome, resp, n)
}

// seal lays out the entry: grants to the heads of the queues of locks due
// by stamp first (the first command's clock advance expires them), then
// the batch in arrival order, each release followed by the grant to its
// lock's next holder.
func (b *proposer) seal(batch []*proposal, stamp int64) []slot {
	slots := make([]slot, 0, len(batch)+1)
	hp := b.n.handoff.Load()
	if hp == nil {
		for _, p := range batch {
			slots = append(slots, slot{cmd: p.cmd, p: p})
		}
		return slots
	}
	h := *hp
	handed := 0
	if d, held := b.n.fsm.NextDeadline(); held && d <= stamp {
		for _, name := range b.n.fsm.DueBy(stamp, maxHandoffsPerEntry) {
			slots, handed = b.appendHandoff(slots, h, name, handed)
		}
	}
	for _, p := range batch {
		slots = append(slots, slot{cmd: p.cmd, p: p})
		if p.cmd.Kind == fsm.KindRelease {
			slots, handed = b.appendHandoff(slots, h, p.cmd.Name, handed)
		}
	}
	return slots
}

func (b *proposer) appendHandoff(slots []slot, h Handoff, name string, handed int) ([]slot, int) {
	if handed >= maxHandoffsPerEntry {
		return slots, handed
	}
	req, deliver, ok := h.Next(name)
	if !ok {
		return slots, handed
	}
	c, err := acquireCommand(req)
	if err != nil {
		deliver(fsm.Result{}, err)
		return slots, handed
	}
	return append(slots, slot{cmd: c, deliver: deliver}), handed + 1
}

// ProposalStats reports how many entries and commands this node has
// proposed: fewer entries than commands means packing worked.
func (n *Node) ProposalStats() (entries, commands uint64) {
	return n.proposer.entries.Load(), n.proposer.commands.Load()
}
