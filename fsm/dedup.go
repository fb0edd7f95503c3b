package fsm

// Request-id deduplication (docs/design.md, Request ids and idempotency).
//
// The table remembers, for DedupTTL on the lease clock, every request id
// whose command acted: a grant, a release, a refresh. A repeat of one of
// those is answered from the table and never acts again. A refusal (busy,
// not held) is not remembered: it changed nothing, so a repeat may be
// evaluated afresh.
//
// The bound is honest: the table holds at most MaxDedup live ids, and when
// it is full a command carrying a new id is refused (TooManyIDs) rather
// than a live id being forgotten early. MaxDedup over DedupTTL is the
// sustained rate of commands with ids the cluster promises to deduplicate
// (DedupRate); bursts above it use the headroom, and past it callers are
// told to retry later instead of losing the guarantee silently.

// dedupEntry is one remembered request id and what its first command did.
// Entries are immutable once stored, so a snapshot may share them. They
// are compact: the answer to a repeat is rebuilt from the fence and the
// lock as it is now (see Machine.replay).
type dedupEntry struct {
	key     string
	expires int64
	outcome Outcome
	index   uint64
	fence   uint64
}

// dedupTable remembers recent request ids in insertion order. Because the
// lease clock never goes backwards and the TTL is fixed, insertion order is
// also expiry order: expiring pops the front, O(1).
//
// The queue's live part is never written in place: put appends past its
// end and expire only moves head (compaction copies into a new array). So
// a snapshot can share queue[head:len] without copying up to MaxDedup
// entries under the state machine's lock; expired slots before head stay
// referenced until the next compaction, at most as many as are live.
type dedupTable struct {
	limit int // MaxDedup; tests lower it
	byKey map[string]*dedupEntry
	queue []*dedupEntry
	head  int
}

func newDedupTable() dedupTable {
	return dedupTable{limit: MaxDedup, byKey: map[string]*dedupEntry{}}
}

func (d *dedupTable) get(key string) (*dedupEntry, bool) {
	e, ok := d.byKey[key]
	return e, ok
}

// full reports whether a new id must be refused.
func (d *dedupTable) full() bool { return len(d.byKey) >= d.limit }

func (d *dedupTable) put(e *dedupEntry) {
	d.byKey[e.key] = e
	d.queue = append(d.queue, e)
}

func (d *dedupTable) expire(now int64) {
	for d.head < len(d.queue) && d.queue[d.head].expires <= now {
		e := d.queue[d.head]
		d.head++
		delete(d.byKey, e.key)
	}
	if d.head > 1024 && d.head*2 > len(d.queue) {
		d.queue = append([]*dedupEntry(nil), d.queue[d.head:]...)
		d.head = 0
	}
}

// live returns the live entries in insertion order, sharing the queue's
// array: O(1), and immutable for the caller (see dedupTable). The full
// slice expression stops a caller's append from writing into the queue.
func (d *dedupTable) live() []*dedupEntry {
	n := len(d.queue)
	return d.queue[d.head:n:n]
}

func (d *dedupTable) len() int { return len(d.byKey) }

// acted reports an outcome that changed the lock table: only those are
// remembered, because only they must never happen twice.
func acted(o Outcome) bool {
	return o == Granted || o == Released || o == Refreshed
}

// replay answers a repeated request id with what its first command did,
// without acting again. A grant or refresh is answered with the lock as it
// is now when that grant still holds it (same fence); a grant that has
// ended since (released, expired, or undone because its first client went
// away) is answered Ended, and a refresh of an ended grant NotHeld:
// telling a repeat "you hold it" then would hand one lock to two clients,
// and granting again would act twice.
func (m *Machine) replay(c Command, first *dedupEntry) Result {
	r := Result{Outcome: first.outcome, Index: first.index}
	cur, held := m.byName.Get(&Lock{Name: c.Name})
	stillHeld := held && cur.Fence == first.fence
	switch first.outcome {
	case Granted:
		if !stillHeld {
			return Result{Outcome: Ended, Index: first.index, Lock: Lock{Name: c.Name, Fence: first.fence}}
		}
		r.Lock = *cur
	case Refreshed:
		if !stillHeld {
			return Result{Outcome: NotHeld, Index: first.index}
		}
		r.Lock = *cur
	case Released:
		r.Lock = Lock{Name: c.Name, Fence: first.fence}
	}
	return r
}

// dedupKey scopes a request id to the command kind and lock name, so an id
// reused for another operation or another lock is never answered with a
// first answer that was not its own (which could reveal a session token).
func dedupKey(c Command) string {
	if c.RequestID == "" {
		return ""
	}
	return string(rune('0'+c.Kind)) + c.Name + "\x00" + c.RequestID
}

// Recall answers, from local applied state, what a repeat of c would be
// told if its request id is remembered. It acts on nothing.
func (m *Machine) Recall(c Command) (Result, bool) {
	key := dedupKey(c)
	if key == "" {
		return Result{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	first, ok := m.dedup.get(key)
	if !ok || first.expires <= m.leaseNow {
		return Result{}, false
	}
	r := m.replay(c, first)
	r.Duplicate, r.Now = true, m.leaseNow
	return r, true
}
