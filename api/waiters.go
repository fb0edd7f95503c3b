package api

import (
	"container/list"
	"context"
	"sync"

	"github.com/doubledutch/doubledutch/cluster"
)

// Waiting for a lock (docs/design.md, Waiting for a lock).
//
// Each contended name has a FIFO queue of waiters. A waiter is the request
// handler's own goroutine parked in a select: it costs a small struct, a
// one-slot channel and its timeout timer, and no other goroutine. When the
// applied log frees a name, the event handler pops the head waiter whose
// client is still connected and gives it the turn (a send on its channel);
// that waiter's goroutine proposes the acquire itself. Exactly one waiter
// per name holds the turn at a time, so a freed lock is handed to one
// waiter in one commit, and the others keep their places.
//
// Locking: waitSet.mu guards everything here and is never held while
// calling the Cluster, because the Cluster calls back into freed() from its
// apply goroutine.

// generation lets one close end every waiter registered under it: on
// leadership loss or shutdown, waiters wake on done and answer err.
type generation struct {
	done chan struct{}
	err  error
}

// waiter is one waiting request.
type waiter struct {
	ctx  context.Context // the request's: done when the client went away
	turn chan struct{}   // one slot; a value means "propose your acquire now"
	q    *queue
	elem *list.Element // position in q.waiting; nil when not queued
	gen  *generation
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
}

func newWaitSet(maxTotal, maxPerName int) *waitSet {
	return &waitSet{
		queues:     map[string]*queue{},
		maxTotal:   maxTotal,
		maxPerName: maxPerName,
		gen:        &generation{done: make(chan struct{})},
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

// enqueue adds a waiter for name at the back of its queue. Every waiter
// enqueue returns must be given to finish exactly once.
func (ws *waitSet) enqueue(ctx context.Context, name string) (*waiter, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	switch {
	case ws.closed != nil:
		return nil, ws.closed
	case !ws.leader:
		return nil, cluster.ErrNotLeader
	case ws.total >= ws.maxTotal:
		return nil, newError(ErrTooManyWaiters, "%d requests are already waiting at this node; retry later", ws.total)
	}
	q := ws.queues[name]
	if q == nil {
		q = &queue{name: name}
		ws.queues[name] = q
	} else if q.waiting.Len() >= ws.maxPerName {
		return nil, newError(ErrTooManyWaiters, "%d requests are already waiting for this lock; retry later", q.waiting.Len())
	}
	w := &waiter{ctx: ctx, turn: make(chan struct{}, 1), q: q, gen: ws.gen}
	w.elem = q.waiting.PushBack(w)
	ws.total++
	return w, nil
}

// finish ends w's wait. A turn w was given but did not use passes on.
func (ws *waitSet) finish(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	q := w.q
	if w.elem != nil {
		q.waiting.Remove(w.elem)
		w.elem = nil
	}
	if q.granting == w {
		q.granting = nil
		ws.handOn(q)
	}
	ws.total--
	ws.dropIfIdle(q)
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

// freed hands each freed name to its head waiter. It runs on the
// cluster's apply goroutine: it only takes mu and sends on a free slot.
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
	for e := q.waiting.Front(); e != nil; e = q.waiting.Front() {
		w := q.waiting.Remove(e).(*waiter)
		w.elem = nil
		if w.ctx.Err() != nil {
			continue
		}
		q.granting = w
		w.turn <- struct{}{} // never blocks: one turn at a time per waiter
		return
	}
	ws.dropIfIdle(q)
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
	ws.end(ErrLeaderChanged, false)
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
