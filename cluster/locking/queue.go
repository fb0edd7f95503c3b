package locking

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// Waiting for a lock (docs/design.md, Waiting for a lock).
//
// Each contended name has a FIFO queue of waiters. A waiter is the
// request's own goroutine parked in a select: a small struct, a one-slot
// channel and its timer. Exactly one waiter per name holds the turn at a
// time (queue.granting):
//
//   - Handoff: when the proposer seals an entry that frees the lock (a
//     release it carries, or an expiry due by its stamp), it calls Next,
//     which pops the head waiter whose client is still there and returns
//     its acquire; the proposer packs it right after the freeing command.
//     The grant commits with the release, and the result is delivered to
//     the waiter.
//   - Fallback: when the applied log frees a name whose queue holds no
//     turn (the lock expired in an entry that carried no grant, or a
//     follower's release), the head waiter gets a "propose now" turn.
//
// Locking: waitSet.mu guards everything here and is never held while
// calling the Cluster: the proposer calls Next while sealing, and the
// cluster calls freed from its apply goroutine.

// generation lets one close end every waiter registered under it: on
// leadership loss or shutdown, waiters wake on done and answer err.
type generation struct {
	done chan struct{}
	err  error
}

// wake is what a waiter is woken with: its turn to propose, or the result
// of the acquire the proposer packed for it.
type wake struct {
	handed bool
	res    fsm.Result
	err    error
}

// waiter is one waiting request.
type waiter struct {
	ctx   context.Context // the request's: done when the client went away
	req   cluster.AcquireRequest
	wake  chan wake // one slot; at most one turn or handoff at a time
	q     *queue
	elem  *list.Element // position in q.waiting; nil when not queued
	gen   *generation
	ended bool // finish ran: the request has answered
	// handedOff: Next gave w's acquire to the proposer and its result
	// has not been delivered yet.
	handedOff bool
}

// queue holds the waiters for one name.
type queue struct {
	name     string
	waiting  list.List // of *waiter, front first
	granting *waiter   // the waiter holding the turn, if any
}

// waitSet holds every queue of this node.
type waitSet struct {
	mu         sync.Mutex
	queues     map[string]*queue
	total      int
	maxTotal   int
	maxPerName int
	leader     bool
	closed     error // set by close: no new waiters
	gen        *generation
	// abandoned releases a grant delivered to a waiter that had left.
	abandoned func(lock fsm.Lock, requestID string)
}

var _ cluster.Handoff = (*waitSet)(nil)

func newWaitSet(maxTotal, maxPerName int, abandoned func(fsm.Lock, string)) *waitSet {
	return &waitSet{
		queues:     map[string]*queue{},
		maxTotal:   maxTotal,
		maxPerName: min(maxPerName, maxTotal),
		gen:        &generation{done: make(chan struct{})},
		abandoned:  abandoned,
	}
}

// setLeader records whether this node leads; only a leader takes waiters.
func (ws *waitSet) setLeader(b bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.leader = b && ws.closed == nil
}

// contended reports whether name has waiters (queued or taking their
// turn). A newcomer must then queue behind them instead of proposing.
func (ws *waitSet) contended(name string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	_, ok := ws.queues[name]
	return ok
}

// count is the number of requests waiting for name at this node.
func (ws *waitSet) count(name string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	q, ok := ws.queues[name]
	if !ok {
		return 0
	}
	n := q.waiting.Len()
	if q.granting != nil {
		n++
	}
	return n
}

// size is the number of waiting requests at this node.
func (ws *waitSet) size() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.total
}

// enqueue adds a waiter at the back of its name's queue. Every waiter
// enqueue returns must be given to finish exactly once.
func (ws *waitSet) enqueue(ctx context.Context, req cluster.AcquireRequest) (*waiter, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	switch {
	case ws.closed != nil:
		return nil, ws.closed
	case !ws.leader:
		return nil, cluster.ErrNotLeader
	case ws.total >= ws.maxTotal:
		return nil, fmt.Errorf("%w: %d requests are already waiting at this node; retry later", ErrTooManyWaiters, ws.total)
	}
	q := ws.queues[req.Name]
	if q == nil {
		q = &queue{name: req.Name}
		ws.queues[req.Name] = q
	} else if q.waiting.Len() >= ws.maxPerName {
		return nil, fmt.Errorf("%w: %d requests are already waiting for this lock; retry later", ErrTooManyWaiters, q.waiting.Len())
	}
	w := &waiter{ctx: ctx, req: req, wake: make(chan wake, 1), q: q, gen: ws.gen}
	w.elem = q.waiting.PushBack(w)
	ws.total++
	return w, nil
}

// finish ends w's wait. A turn w was given but did not use passes on; a
// grant delivered to it that it did not take is released.
func (ws *waitSet) finish(w *waiter) {
	var abandoned *fsm.Lock
	ws.mu.Lock()
	w.ended = true
	q := w.q
	if w.elem != nil {
		q.waiting.Remove(w.elem)
		w.elem = nil
	}
	select {
	case m := <-w.wake:
		if m.handed && m.err == nil && m.res.Outcome == fsm.Granted && !m.res.Duplicate {
			abandoned = &m.res.Lock
		}
	default:
	}
	if q.granting == w && abandoned == nil {
		// An unused turn, or a handoff still in flight: the turn passes
		// on now, or when the handoff's result arrives (delivered).
		if !w.handedOff {
			q.granting = nil
			ws.handOn(q)
		}
	} else if q.granting == w {
		q.granting = nil // held by the abandoned grant until it is released
	}
	ws.total--
	ws.dropIfIdle(q)
	ws.mu.Unlock()
	if abandoned != nil {
		go ws.abandoned(*abandoned, w.req.RequestID)
	}
}

// granted ends w's turn after its acquire was applied: the lock is held
// again, so the turn passes on only when the lock is next freed.
func (ws *waitSet) granted(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.q.granting == w {
		w.q.granting = nil
	}
	ws.dropIfIdle(w.q)
}

// requeue puts w back at the front after its acquire came back Busy (a
// request that saw no queue got in first): w keeps its place.
func (ws *waitSet) requeue(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.q.granting == w {
		w.q.granting = nil
	}
	if w.gen == ws.gen && ws.queues[w.q.name] == w.q {
		w.elem = w.q.waiting.PushFront(w)
	}
}

// kick gives name's turn out if nobody holds it. Callers kick when they
// see the lock free, to close the race between "Busy" and "enqueued".
func (ws *waitSet) kick(name string) {
	ws.freed([]string{name})
}

// freed hands each freed name to its head waiter as a "propose now" turn.
// It runs on the cluster's apply goroutine: it only takes mu and sends on
// a free slot.
func (ws *waitSet) freed(names []string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, name := range names {
		if q := ws.queues[name]; q != nil && q.granting == nil {
			ws.handOn(q)
		}
	}
}

// handOn gives q's turn to its first waiter whose client is still there.
// Waiters whose clients left are dropped here and never granted. mu held.
func (ws *waitSet) handOn(q *queue) {
	if w := ws.popLive(q); w != nil {
		q.granting = w
		w.wake <- wake{} // never blocks: one turn at a time per waiter
		return
	}
	ws.dropIfIdle(q)
}

// popLive removes and returns q's first waiter whose client is still
// there. mu held.
func (ws *waitSet) popLive(q *queue) *waiter {
	for e := q.waiting.Front(); e != nil; e = q.waiting.Front() {
		w := q.waiting.Remove(e).(*waiter)
		w.elem = nil
		if w.ctx.Err() == nil {
			return w
		}
	}
	return nil
}

// Next implements cluster.Handoff: the proposer is sealing an entry that
// frees name; the head waiter's acquire rides in the same entry. The
// waiter holds the turn until deliver reports the result.
func (ws *waitSet) Next(name string) (cluster.AcquireRequest, func(fsm.Result, error), bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	q := ws.queues[name]
	if q == nil || q.granting != nil || !ws.leader {
		return cluster.AcquireRequest{}, nil, false
	}
	w := ws.popLive(q)
	if w == nil {
		ws.dropIfIdle(q)
		return cluster.AcquireRequest{}, nil, false
	}
	q.granting = w
	w.handedOff = true
	return w.req, func(res fsm.Result, err error) { ws.delivered(w, res, err) }, true
}

// delivered hands the result of a packed acquire to its waiter, or, when
// the waiter has already answered, releases the grant (its client left)
// or passes the turn on.
func (ws *waitSet) delivered(w *waiter, res fsm.Result, err error) {
	ws.mu.Lock()
	w.handedOff = false
	if !w.ended {
		w.wake <- wake{handed: true, res: res, err: err}
		ws.mu.Unlock()
		return
	}
	q := w.q
	if q.granting == w {
		q.granting = nil
	}
	grant := err == nil && res.Outcome == fsm.Granted && !res.Duplicate
	if !grant {
		ws.handOn(q)
	}
	ws.mu.Unlock()
	if grant {
		go ws.abandoned(res.Lock, w.req.RequestID)
	}
}

// dropIfIdle forgets q when nobody waits on it. mu held.
func (ws *waitSet) dropIfIdle(q *queue) {
	if q.granting == nil && q.waiting.Len() == 0 && ws.queues[q.name] == q {
		delete(ws.queues, q.name)
	}
}

// lostLeadership ends every waiter with a retryable answer: the new leader
// knows nothing of them, and this node can no longer grant.
func (ws *waitSet) lostLeadership() {
	ws.end(errLeaderChanged, false)
}

// close ends every waiter with err and refuses new ones.
func (ws *waitSet) close(err error) {
	ws.end(err, true)
}

func (ws *waitSet) end(err error, closing bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.leader = false
	if closing {
		ws.closed = err
	}
	for _, q := range ws.queues {
		for e := q.waiting.Front(); e != nil; e = e.Next() {
			e.Value.(*waiter).elem = nil
		}
		q.waiting.Init()
		q.granting = nil
	}
	ws.queues = map[string]*queue{}
	old := ws.gen
	ws.gen = &generation{done: make(chan struct{})}
	old.err = err
	close(old.done)
}

// pending reports whether a grant for w is in flight in the proposer.
func (ws *waitSet) pending(w *waiter) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return w.handedOff
}
