package fsm

// dedupEntry is one remembered request id with its first answer. Entries
// are immutable once stored, so a snapshot may share them.
type dedupEntry struct {
	id      string
	expires int64
	result  Result
}

// dedupTable remembers recent request ids in insertion order. Because the
// lease clock never goes backwards and the TTL is fixed, insertion order is
// also expiry order: expiring and evicting both pop the front, O(1).
type dedupTable struct {
	byID  map[string]*dedupEntry
	queue []*dedupEntry
	head  int
}

func newDedupTable() dedupTable {
	return dedupTable{byID: map[string]*dedupEntry{}}
}

func (d *dedupTable) get(id string) (Result, bool) {
	e, ok := d.byID[id]
	if !ok {
		return Result{}, false
	}
	return e.result, true
}

func (d *dedupTable) put(id string, expires int64, r Result) {
	if len(d.byID) >= MaxDedup {
		d.popFront()
	}
	r.Freed = nil
	e := &dedupEntry{id: id, expires: expires, result: r}
	d.byID[id] = e
	d.queue = append(d.queue, e)
}

func (d *dedupTable) expire(now int64) {
	for d.head < len(d.queue) && d.queue[d.head].expires <= now {
		d.popFront()
	}
}

func (d *dedupTable) popFront() {
	e := d.queue[d.head]
	d.queue[d.head] = nil
	d.head++
	delete(d.byID, e.id)
	if d.head > 1024 && d.head*2 > len(d.queue) {
		d.queue = append([]*dedupEntry(nil), d.queue[d.head:]...)
		d.head = 0
	}
}

// live returns a copy of the live entries in insertion order.
func (d *dedupTable) live() []*dedupEntry {
	return append([]*dedupEntry(nil), d.queue[d.head:]...)
}

func (d *dedupTable) len() int { return len(d.byID) }
