package chaos

import "sync"

// Resource is the fenced resource: a store that keeps, per name, the
// highest fencing token that has written to it, and refuses writes with
// a lower one. It is what makes a lease-based lock safe for a holder that
// pauses past its lifetime; the checker verifies it from its log.
type Resource struct {
	rec  *Recorder
	mu   sync.Mutex
	high map[string]uint64
}

// NewResource logs every write to rec.
func NewResource(rec *Recorder) *Resource {
	return &Resource{rec: rec, high: map[string]uint64{}}
}

// Write writes on behalf of token. inBelief says whether the writer
// believes it holds the lock; paused, whether it just resumed from a
// pause past its lifetime. Writes are logged in acceptance order.
func (r *Resource) Write(client int, name string, token uint64, inBelief, paused bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := token >= r.high[name]
	if ok {
		r.high[name] = token
	}
	r.rec.AddWrite(Write{Time: r.rec.Now(), Client: client, Name: name, Token: token,
		Accepted: ok, InBelief: inBelief, Paused: paused})
	return ok
}
