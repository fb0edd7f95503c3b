package chaos

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Kind is the kind of a recorded operation.
type Kind uint8

// Operation kinds.
const (
	Acquire Kind = iota + 1
	Release
	Refresh
	Get
)

func (k Kind) String() string {
	switch k {
	case Acquire:
		return "acquire"
	case Release:
		return "release"
	case Refresh:
		return "refresh"
	case Get:
		return "get"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Outcome is how a logical operation ended.
type Outcome uint8

// Outcomes. OK means granted, released, refreshed, or (Get) held.
const (
	OK Outcome = iota + 1
	Busy
	NotHeld
	NotFound
	// Unknown: no attempt got a definite answer and at least one may have
	// been applied.
	Unknown
	// Failed: every attempt was definitely not applied (503, refused
	// connection); the operation had no effect.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Busy:
		return "busy"
	case NotHeld:
		return "not_held"
	case NotFound:
		return "not_found"
	case Unknown:
		return "unknown"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// definite reports whether the cluster gave an answer.
func (o Outcome) definite() bool { return o >= OK && o <= NotFound }

// Op is one logical client operation: every attempt with one request id,
// from the first send to the definite answer. Times are nanoseconds since
// the run's start on one monotonic clock.
type Op struct {
	ID     int
	Client int
	Kind   Kind
	Name   string
	// Fence is the fencing token returned (Acquire, Get) or the one of the
	// lock acted on (Release, Refresh).
	Fence     uint64
	Lifetime  time.Duration // Acquire, Refresh
	Wait      time.Duration // Acquire
	RequestID string
	Call      int64
	// Return is the time of the definite answer (or of giving up, for
	// Unknown and Failed: the model treats Unknown as never returning).
	Return  int64
	Outcome Outcome
	// LastSend is when the attempt that got the answer was sent.
	LastSend int64
	Attempts int
	Note     string
	// Paused marks a grant whose holder then stopped for longer than its
	// lifetime; Abandoned one whose holder died without releasing.
	Paused    bool
	Abandoned bool
}

func (o *Op) String() string {
	s := fmt.Sprintf("op %d c%d %s(%s", o.ID, o.Client, o.Kind, o.Name)
	switch o.Kind {
	case Acquire:
		s += fmt.Sprintf(", L=%v", o.Lifetime)
		if o.Wait > 0 {
			s += fmt.Sprintf(", wait=%v", o.Wait)
		}
	case Refresh:
		s += fmt.Sprintf(", #%d, L=%v", o.Fence, o.Lifetime)
	case Release:
		s += fmt.Sprintf(", #%d", o.Fence)
	}
	s += fmt.Sprintf(") [%s .. %s] -> %s", ms(o.Call), ms(o.Return), o.Outcome)
	if (o.Kind == Acquire || o.Kind == Get) && o.Outcome == OK {
		s += fmt.Sprintf(" #%d", o.Fence)
	}
	if o.Outcome == Unknown {
		s += " (return treated as +inf)"
	}
	if o.Paused {
		s += " [holder paused]"
	}
	if o.Abandoned {
		s += " [holder died]"
	}
	return s
}

// ms renders a history time as seconds with millisecond precision.
func ms(t int64) string { return fmt.Sprintf("%.3fs", float64(t)/1e9) }

// Attempt is one HTTP attempt of an operation, kept for availability.
type Attempt struct {
	Op         int
	Start, End int64
	Endpoint   int
	Result     string // ok, definite, not_applied, unknown
	OK         bool   // the attempt succeeded
}

// Write is one write to the fenced resource.
type Write struct {
	Time     int64
	Client   int
	Name     string
	Token    uint64
	Accepted bool
	// InBelief: the writer believed it held the lock (inside its belief
	// window). Paused: the writer resumed after a pause past its lifetime.
	InBelief bool
	Paused   bool
}

// FaultEvent is one injected fault, for the report and the availability
// figures.
type FaultEvent struct {
	Kind   string
	Detail string
	Start  int64
	End    int64
	// Leader is true when the fault hit the node that led at its start
	// (killed, stopped, isolated or stopped gracefully).
	Leader bool
	// Failover, for a kill or stop, is the time to the first grant of a
	// fresh request to a surviving node (-1: none while the fault lasted).
	Failover time.Duration
}

// History is everything a run recorded.
type History struct {
	Ops      []Op
	Attempts []Attempt
	Writes   []Write
	Faults   []FaultEvent
	// FaultsEnd is when the last fault was healed.
	FaultsEnd int64
	// Margin is the clients' safety margin: a holder believes it holds a
	// lock until send time + lifetime - Margin.
	Margin time.Duration
}

// Recorder collects a history from concurrent clients.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	h     History
}

// NewRecorder starts the run's clock.
func NewRecorder(margin time.Duration) *Recorder {
	return &Recorder{start: time.Now(), h: History{Margin: margin}}
}

// Now is the time since the run's start, in nanoseconds.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// AddOp records a finished operation and returns its id.
func (r *Recorder) AddOp(op Op) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.ID = len(r.h.Ops)
	r.h.Ops = append(r.h.Ops, op)
	return op.ID
}

// AddAttempts records an operation's attempts.
func (r *Recorder) AddAttempts(op int, as []Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range as {
		a.Op = op
		r.h.Attempts = append(r.h.Attempts, a)
	}
}

// AddWrite records a write to the fenced resource.
func (r *Recorder) AddWrite(w Write) {
	r.mu.Lock()
	r.h.Writes = append(r.h.Writes, w)
	r.mu.Unlock()
}

// AddFault records an injected fault.
func (r *Recorder) AddFault(f FaultEvent) {
	r.mu.Lock()
	r.h.Faults = append(r.h.Faults, f)
	r.mu.Unlock()
}

// SetFaultsEnd records when the fault phase ended.
func (r *Recorder) SetFaultsEnd(t int64) {
	r.mu.Lock()
	r.h.FaultsEnd = t
	r.mu.Unlock()
}

// History returns a copy of what was recorded.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.h
	h.Ops = append([]Op(nil), r.h.Ops...)
	h.Attempts = append([]Attempt(nil), r.h.Attempts...)
	h.Writes = append([]Write(nil), r.h.Writes...)
	h.Faults = append([]FaultEvent(nil), r.h.Faults...)
	return h
}

// byName groups operations by lock name, each in call order.
func byName(ops []Op) map[string][]Op {
	out := map[string][]Op{}
	for _, o := range ops {
		out[o.Name] = append(out[o.Name], o)
	}
	for _, v := range out {
		sort.SliceStable(v, func(i, j int) bool { return v[i].Call < v[j].Call })
	}
	return out
}
