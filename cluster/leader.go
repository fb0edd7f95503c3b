package cluster

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doubledutch/doubledutch/fsm"
)

// leaderTerm is one stretch of leadership of this node.
type leaderTerm struct {
	term uint64
	done chan struct{}
	// stopped is closed once the term has stopped and its end has been
	// told to subscribers (handOver waits for it).
	stopped chan struct{}
	stop    sync.Once
	// armed is the deadline (cluster ms) the expiry timer waits for.
	armed atomic.Int64
	// lastTick is when this leader last proposed a tick (unix ns).
	lastTick atomic.Int64
}

// watchLeadership drains Raft's notify channel for the node's whole life,
// so Raft never blocks on it, and starts or stops a leader term.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var cur *leaderTerm
	for {
		select {
		case isLeader := <-n.notify:
			if cur != nil {
				n.stopLeading(cur)
				cur = nil
			}
			if isLeader {
				n.guard.lift()
				cur = &leaderTerm{term: n.raft.CurrentTerm(), done: make(chan struct{}), stopped: make(chan struct{})}
				cur.armed.Store(math.MaxInt64)
				n.wg.Add(1)
				go n.lead(cur)
			}
		case <-n.raftStopped:
			if cur != nil {
				n.stopLeading(cur)
			}
			return
		}
	}
}

// lead runs one leader term: wait until everything committed by earlier
// leaders is applied (Barrier), start the lease clock from the applied
// clock, announce the API URL, then drive expiry.
func (n *Node) lead(t *leaderTerm) {
	defer n.wg.Done()
	if err := n.raft.Barrier(0).Error(); err != nil {
		n.log.Warn("barrier after election failed", "term", t.term, "error", err)
		return
	}
	n.leadMu.Lock()
	select {
	case <-t.done:
		n.leadMu.Unlock()
		return
	default:
	}
	n.clock.run(n.fsm.Now())
	n.leading.Store(t)
	n.leadMu.Unlock()
	n.log.Info("leading", "term", t.term, "lease_now", n.fsm.Now())
	n.emit(Event{Kind: EventLeadership, IsLeader: true})

	n.wg.Add(1)
	go n.announce(t)
	n.fixOwnAddress()
	n.driveExpiry(t)
}

// announce records this leader's API URL in the log, so followers can
// redirect clients to it. It retries with backoff until it succeeds or
// the term ends: without it every follower answers "no leader" for the
// whole term. A retry after an unknown outcome is harmless: announcing
// the same URL twice changes nothing.
func (n *Node) announce(t *leaderTerm) {
	defer n.wg.Done()
	backoff := 20 * time.Millisecond
	for {
		err := n.injectedAnnounceFailure()
		if err == nil {
			_, err = n.propose(fsm.Command{Kind: fsm.KindAnnounce, NodeID: n.cfg.NodeID, APIURL: n.cfg.APIURL})
		}
		if err == nil {
			return
		}
		n.log.Warn("announcing API URL failed; retrying", "term", t.term, "error", err, "backoff", backoff)
		select {
		case <-t.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// injectedAnnounceFailure fails the first Config.failAnnounces announces
// (tests only).
func (n *Node) injectedAnnounceFailure() error {
	if n.failAnnounces.Add(-1) >= 0 {
		return fmt.Errorf("%w: injected announce failure", ErrNotApplied)
	}
	return nil
}

// stopLeading ends a term: no more stamps, no more ticks.
func (n *Node) stopLeading(t *leaderTerm) {
	t.stop.Do(func() {
		n.leadMu.Lock()
		wasReady := n.leading.CompareAndSwap(t, nil)
		n.clock.stop()
		close(t.done)
		n.leadMu.Unlock()
		if wasReady {
			n.log.Info("stopped leading", "term", t.term)
			n.emit(Event{Kind: EventLeadership, IsLeader: false})
		}
		close(t.stopped)
	})
}

// driveExpiry proposes ticks: when the earliest deadline comes due (a
// timer, so expiry is about one commit late), every TickInterval while
// locks are held (the safety net), and every MaxClockStep/2 when idle so
// the applied clock never lags the leader's reading by more than one step.
// Each wake-up also beats the lease clock, which is how stalls are found.
//
// A tick is proposed on its own goroutine, one at a time, and this loop
// never waits for it: a tick queues behind every command already waiting
// (a burst of a thousand acquires, a slow fsync), and while this loop
// waited for it the clock missed its beats, so a commit slower than the
// stall threshold looked like a paused leader and every entry stamped
// meanwhile was refused "not applied" (503) until leadership was verified.
func (n *Node) driveExpiry(t *leaderTerm) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	keepalive := time.Duration(fsm.MaxClockStep/2) * time.Millisecond
	t.lastTick.Store(time.Now().UnixNano())
	var ticking <-chan struct{} // closed when the tick in flight is answered
	for {
		select {
		case <-t.done:
			return
		case <-n.wake:
		case <-timer.C:
		case <-ticking:
			ticking = nil
		}
		if n.clock.beat() && !n.recoverFromStall(t) {
			return
		}
		deadline, held := n.fsm.NextDeadline()
		now, err := n.clock.now()
		if err != nil {
			timer.Reset(n.cfg.beatInterval())
			continue
		}
		sinceTick := time.Since(time.Unix(0, t.lastTick.Load()))
		due := held && now >= deadline
		if ticking == nil && (due || (held && sinceTick >= n.cfg.TickInterval) || sinceTick >= keepalive) {
			t.lastTick.Store(time.Now().UnixNano())
			ticking = n.proposeTick()
		}
		wait := n.nextWake(t, deadline, held, now)
		if ticking != nil {
			// The tick in flight expires what is due and its answer wakes
			// this loop: a deadline already passed must not spin it.
			wait = max(wait, min(n.cfg.TickInterval, n.cfg.beatInterval()))
		}
		timer.Reset(wait)
	}
}

// proposeTick proposes one tick without waiting for it and returns a
// channel closed once it is answered.
func (n *Node) proposeTick() <-chan struct{} {
	done := make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(done)
		if _, err := n.propose(fsm.Command{Kind: fsm.KindTick}); err != nil {
			n.log.Debug("tick not applied", "error", err)
		}
	}()
	return done
}

// nextWake arms the timer for the earliest deadline, but never later than
// one TickInterval or one beat interval, so the clock keeps beating often
// enough for the stall detector whatever the tick setting.
func (n *Node) nextWake(t *leaderTerm, deadline int64, held bool, now int64) time.Duration {
	wait := min(n.cfg.TickInterval, n.cfg.beatInterval())
	if held {
		t.armed.Store(deadline)
		if until := time.Duration(deadline-now) * time.Millisecond; until < wait {
			wait = max(until, 0)
		}
	} else {
		t.armed.Store(math.MaxInt64)
	}
	return wait
}

// recoverFromStall confirms leadership after the clock goroutine missed its
// beats, then resumes the clock without counting the stall. It reports
// whether this node still leads.
func (n *Node) recoverFromStall(t *leaderTerm) bool {
	n.log.Warn("leader stalled; verifying leadership before stamping again", "term", t.term)
	if err := n.raft.VerifyLeader().Error(); err != nil {
		n.log.Warn("leadership lost during stall", "error", err)
		return false
	}
	n.clock.resume()
	return true
}

// noteDeadline wakes the expiry driver when an applied grant or refresh
// has a deadline earlier than the one it waits for.
func (n *Node) noteDeadline(deadline int64) {
	t := n.leading.Load()
	if t == nil || deadline >= t.armed.Load() {
		return
	}
	t.armed.Store(deadline)
	select {
	case n.wake <- struct{}{}:
	default:
	}
}
