package locking

import (
	"context"
	"sync"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// Abandoned grants and retries.
//
// A grant whose client went away is released at once. But the client may
// retry under the same request id, and the dedup table answers a repeat of
// a grant that still holds with that grant: if the retry were answered
// "granted" and the release applied after it, the retrying client would
// believe it holds a lock the server has freed. Both happen at this
// leader, so this registry orders them: whichever comes first wins. A
// retry that finds a release of its grant under way waits for it and is
// answered "ended"; a release that finds the grant claimed by a retry does
// not happen (the grant has an owner again). Across a leader change the
// order is the log's: an abandoning release the new leader does not have
// never applies, and one it has is applied before it serves.

// claimTTL bounds how long a claim is remembered: an abandoning release
// starts within milliseconds of the grant it gives back.
const claimTTL = 2 * time.Minute

type abandonRegistry struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // grants being released
	claimed map[string]claim         // grants answered to a retry
}

type claim struct {
	count int
	at    time.Time
}

func newAbandonRegistry() *abandonRegistry {
	return &abandonRegistry{pending: map[string]chan struct{}{}, claimed: map[string]claim{}}
}

func grantKey(name, requestID string) string { return name + "\x00" + requestID }

// claim records that a retry is answered with the grant, or returns the
// channel of a release under way to wait for first.
func (r *abandonRegistry) claim(k string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.pending[k]; ok {
		return ch
	}
	now := time.Now()
	c := r.claimed[k]
	r.claimed[k] = claim{count: c.count + 1, at: now}
	if len(r.claimed) > 1024 {
		for key, c := range r.claimed {
			if now.Sub(c.at) > claimTTL {
				delete(r.claimed, key)
			}
		}
	}
	return nil
}

// unclaim drops one claim, made by a retry whose own client then left.
func (r *abandonRegistry) unclaim(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.claimed[k]; ok {
		if c.count <= 1 {
			delete(r.claimed, k)
		} else {
			r.claimed[k] = claim{count: c.count - 1, at: c.at}
		}
	}
}

// abandon reports whether the grant may be released (no retry claimed it,
// no release already under way); done must then be called after.
func (r *abandonRegistry) abandon(k string) (done func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, claimed := r.claimed[k]; claimed {
		return nil, false
	}
	if _, busy := r.pending[k]; busy {
		return nil, false
	}
	ch := make(chan struct{})
	r.pending[k] = ch
	return func() {
		r.mu.Lock()
		delete(r.pending, k)
		r.mu.Unlock()
		close(ch)
	}, true
}

// claimRepeat is called with a repeat's "granted" answer: it claims the
// grant for this request, or, when the grant is being released as
// abandoned, waits for that and answers from applied state (Ended).
func (s *Service) claimRepeat(ctx context.Context, p Params, res fsm.Result) fsm.Result {
	k := grantKey(p.Name, p.RequestID)
	for {
		ch := s.abandons.claim(k)
		if ch == nil {
			return res
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fsm.Result{Outcome: fsm.Ended, Index: res.Index, Lock: fsm.Lock{Name: p.Name, Fence: res.Lock.Fence}}
		}
		again, ok := s.c.Recall(fsm.KindAcquire, p.Name, p.RequestID)
		if !ok || again.Outcome != fsm.Granted {
			return fsm.Result{Outcome: fsm.Ended, Index: res.Index, Lock: fsm.Lock{Name: p.Name, Fence: res.Lock.Fence}}
		}
		res = again
	}
}

// releaseAbandoned gives back a grant nobody will learn about, unless a
// retry under the same request id has claimed it meanwhile.
func (s *Service) releaseAbandoned(lock fsm.Lock, requestID string) {
	done, ok := s.abandons.abandon(grantKey(lock.Name, requestID))
	if !ok {
		s.log.Info("kept a grant whose first client went away: a retry claimed it", "lock", lock.Name,
			"fencing_token", lock.Fence)
		return
	}
	defer done()
	if s.cfg.OnAbandoned != nil {
		s.cfg.OnAbandoned()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProposeTimeout)
	defer cancel()
	res, err := s.c.Release(ctx, lock.Name, lock.Token, NewRequestID())
	s.log.Info("released a grant whose client went away", "lock", lock.Name,
		"fencing_token", lock.Fence, "outcome", res.Outcome.String(), "error", err)
}
