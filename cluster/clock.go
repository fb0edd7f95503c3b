package cluster

import (
	"fmt"
	"sync"
	"time"
)

// errClockStalled: the leader's clock goroutine missed its beats; stamps
// are refused until leadership has been verified again.
var errClockStalled = fmt.Errorf("%w: leader clock stalled, verifying leadership", ErrNotApplied)

// leaseClock is the leader's reading of cluster time (docs/design.md, The
// lease clock):
// base, the applied lease clock when this leader's Barrier returned, plus
// the monotonic time elapsed since. It runs only while this node leads.
type leaseClock struct {
	stall time.Duration

	mu       sync.Mutex
	running  bool
	stalled  bool
	base     int64     // cluster ms at start
	start    time.Time // monotonic origin of base
	lastBeat time.Time // last time the clock goroutine ran
	issued   int64     // highest reading handed out
}

func newLeaseClock(stall time.Duration) *leaseClock {
	return &leaseClock{stall: stall}
}

// run starts the clock at base. Time while no clock ran is never counted.
func (c *leaseClock) run(base int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.running, c.stalled = true, false
	c.base, c.start, c.lastBeat, c.issued = base, now, now, base
}

// stop ends the clock when leadership is lost.
func (c *leaseClock) stop() {
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
}

// now reads cluster time in ms. It refuses while stopped or stalled: a
// reading taken after an unnoticed pause could run ahead of what another
// leader has meanwhile applied.
func (c *leaseClock) now() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return 0, ErrNotLeader
	}
	t := time.Now()
	if c.stalled || t.Sub(c.lastBeat) > c.stall {
		c.stalled = true
		return 0, errClockStalled
	}
	r := c.base + (t.Sub(c.start) + brokenClockSkew()).Milliseconds()
	if r > c.issued {
		c.issued = r
	}
	return r, nil
}

// beat records that the clock goroutine ran. It reports whether a stall
// was detected since the previous beat; the caller must then verify
// leadership and call resume.
func (c *leaseClock) beat() (stalled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now()
	if t.Sub(c.lastBeat) > c.stall {
		c.stalled = true
	}
	if !c.stalled {
		c.lastBeat = t
	}
	return c.stalled
}

// resume restarts a stalled clock from the highest reading it handed out,
// so the stalled interval is treated like leaderless time: not counted.
// Never restarting below a reading already issued keeps every later stamp
// at or above the stamps of commands still in flight, so none of those can
// expire a lock granted after the stall early.
func (c *leaseClock) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running || !c.stalled {
		return
	}
	t := time.Now()
	c.base, c.start, c.lastBeat, c.stalled = c.issued, t, t, false
}
