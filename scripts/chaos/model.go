package chaos

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// The lock model (see the package documentation for its rules).

// never is the model's return time of an operation of unknown outcome.
const never = int64(math.MaxInt64)

// lockInput is what the model knows of an operation: its arguments and
// its own time window, since porcupine's Step sees no timestamps.
type lockInput struct {
	Op       int
	Client   int
	Kind     Kind
	Name     string
	Fence    uint64 // Release, Refresh: the lock acted on
	Lifetime int64  // ns
	Call     int64
	Ret      int64 // never for unknown outcomes
}

type lockOutput struct {
	Outcome Outcome
	Fence   uint64 // Acquire, Get: the token returned
}

// lockState is one possible state of one name.
type lockState struct {
	Holder    uint64 // fencing token of the holder, 0 when free or Anon
	Anon      bool   // held by a grant of unknown outcome (token unknown)
	Expire    int64  // earliest time the holder's lease can have ended
	LastFence uint64 // highest token known to be granted
	Lo        int64  // earliest time the last linearized op took effect
}

func (s lockState) held() bool { return s.Holder != 0 || s.Anon }

// freed returns s with the lock free at an operation that returned at
// ret: already free, or expired, which is possible only once Expire has
// passed.
func (s lockState) freed(ret int64) (lockState, bool) {
	if !s.held() {
		return s, true
	}
	if s.Expire > ret {
		return s, false
	}
	return lockState{LastFence: s.LastFence, Lo: max(s.Lo, s.Expire)}, true
}

// lockModel builds the porcupine model. tol is subtracted from every
// lease's earliest end: the leader's clock truncates to milliseconds.
func lockModel(tol int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partitionByName,
		Init:      func() []interface{} { return []interface{}{lockState{}} },
		Step: func(state, input, output interface{}) []interface{} {
			return step(state.(lockState), input.(lockInput), output.(lockOutput), tol)
		},
		Hash: func(state interface{}) uint64 {
			s := state.(lockState)
			h := s.Holder*0x9e3779b97f4a7c15 ^ uint64(s.Expire)*0xbf58476d1ce4e5b9 ^
				s.LastFence*0x94d049bb133111eb ^ uint64(s.Lo)
			if s.Anon {
				h = ^h
			}
			return h
		},
		DescribeOperation: describeOp,
		DescribeState:     describeState,
	}
	return nm.ToModel()
}

func partitionByName(history []porcupine.Operation) [][]porcupine.Operation {
	groups := map[string][]porcupine.Operation{}
	for _, op := range history {
		n := op.Input.(lockInput).Name
		groups[n] = append(groups[n], op)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][]porcupine.Operation, 0, len(names))
	for _, n := range names {
		out = append(out, groups[n])
	}
	return out
}

// step returns every state the model can be in after the operation.
func step(s lockState, in lockInput, out lockOutput, tol int64) []interface{} {
	s.Lo = max(s.Lo, in.Call)
	if s.Lo > in.Ret {
		return nil
	}
	var next []lockState
	switch in.Kind {
	case Acquire:
		next = stepAcquire(s, in, out, tol)
	case Release:
		next = stepRelease(s, in, out)
	case Refresh:
		next = stepRefresh(s, in, out, tol)
	case Get:
		next = stepGet(s, in, out)
	}
	res := make([]interface{}, 0, len(next))
	for _, n := range next {
		res = append(res, n)
	}
	return res
}

func stepAcquire(s lockState, in lockInput, out lockOutput, tol int64) []lockState {
	expire := in.Call + in.Lifetime - tol
	switch out.Outcome {
	case OK:
		f, ok := s.freed(in.Ret)
		if !ok || out.Fence <= f.LastFence {
			return nil
		}
		return []lockState{{Holder: out.Fence, Expire: expire, LastFence: out.Fence, Lo: f.Lo}}
	case Busy:
		if s.held() {
			return []lockState{s}
		}
		return nil
	case Unknown:
		// Refused, never applied, or granted to a holder nobody heard of.
		res := []lockState{s}
		if f, ok := s.freed(in.Ret); ok {
			res = append(res, lockState{Anon: true, Expire: expire, LastFence: f.LastFence, Lo: f.Lo})
		}
		return res
	}
	return nil
}

func stepRelease(s lockState, in lockInput, out lockOutput) []lockState {
	return byHolder(s, in, out, lockState{LastFence: s.LastFence, Lo: s.Lo})
}

func stepRefresh(s lockState, in lockInput, out lockOutput, tol int64) []lockState {
	// A refresh never moves a deadline earlier (the FSM's promise: a late
	// refresh must not take back time an earlier one gave).
	refreshed := s
	refreshed.Expire = max(s.Expire, in.Call+in.Lifetime-tol)
	return byHolder(s, in, out, refreshed)
}

// byHolder is the step of a release or refresh, which acts only for the
// holder of in.Fence: acted is the state it leaves when it acts. OK says
// it acted (so in.Fence held the lock), not_held that it did not, and an
// unknown outcome allows both.
func byHolder(s lockState, in lockInput, out lockOutput, acted lockState) []lockState {
	switch out.Outcome {
	case OK:
		if s.Holder == in.Fence {
			return []lockState{acted}
		}
		return nil
	case NotHeld:
		return notHeld(s, in)
	case Unknown:
		res := []lockState{s}
		if s.Holder == in.Fence {
			res = append(res, acted)
		}
		return res
	}
	return nil
}

// notHeld: the token does not hold the lock, because someone else (or
// nobody) does, or because it has expired.
func notHeld(s lockState, in lockInput) []lockState {
	if s.Holder != in.Fence {
		return []lockState{s}
	}
	if f, ok := s.freed(in.Ret); ok {
		return []lockState{f}
	}
	return nil
}

func stepGet(s lockState, in lockInput, out lockOutput) []lockState {
	switch out.Outcome {
	case OK:
		if s.Holder == out.Fence {
			return []lockState{s}
		}
		if s.Anon && out.Fence > s.LastFence {
			// The read names the anonymous holder's token.
			s.Anon, s.Holder, s.LastFence = false, out.Fence, out.Fence
			return []lockState{s}
		}
		return nil
	case NotFound:
		if f, ok := s.freed(in.Ret); ok {
			return []lockState{f}
		}
	}
	return nil
}

func describeOp(input, output interface{}) string {
	in, out := input.(lockInput), output.(lockOutput)
	var args string
	switch in.Kind {
	case Acquire:
		args = fmt.Sprintf("L=%.3fs", float64(in.Lifetime)/1e9)
	case Refresh:
		args = fmt.Sprintf("#%d, L=%.3fs", in.Fence, float64(in.Lifetime)/1e9)
	case Release:
		args = fmt.Sprintf("#%d", in.Fence)
	}
	res := out.Outcome.String()
	if out.Outcome == OK && (in.Kind == Acquire || in.Kind == Get) {
		res = fmt.Sprintf("#%d", out.Fence)
	}
	ret := "inf"
	if in.Ret != never {
		ret = ms(in.Ret)
	}
	return fmt.Sprintf("op%d c%d %s(%s) [%s..%s] -> %s", in.Op, in.Client, in.Kind, args, ms(in.Call), ret, res)
}

func describeState(state interface{}) string {
	s := state.(lockState)
	switch {
	case s.Anon:
		return fmt.Sprintf("held by an unknown grant, expires >= %s (lo %s)", ms(s.Expire), ms(s.Lo))
	case s.Holder != 0:
		return fmt.Sprintf("held #%d, expires >= %s (lo %s)", s.Holder, ms(s.Expire), ms(s.Lo))
	}
	return fmt.Sprintf("free, last #%d (lo %s)", s.LastFence, ms(s.Lo))
}

// porcupineOps turns the history into porcupine operations. Failed
// operations had no effect and reads of unknown outcome have none either:
// both are left out. Unknown operations return at the end of the history
// for porcupine and at +infinity for the model.
func porcupineOps(ops []Op) []porcupine.Operation {
	end := int64(0)
	for _, o := range ops {
		end = max(end, o.Return, o.Call)
	}
	var out []porcupine.Operation
	for _, o := range ops {
		if o.Outcome == Failed || (o.Kind == Get && !o.Outcome.definite()) {
			continue
		}
		in := lockInput{Op: o.ID, Client: o.Client, Kind: o.Kind, Name: o.Name,
			Lifetime: int64(o.Lifetime), Call: o.Call, Ret: o.Return}
		outp := lockOutput{Outcome: o.Outcome}
		if o.Kind == Release || o.Kind == Refresh {
			in.Fence = o.Fence
		} else {
			outp.Fence = o.Fence
		}
		ret := o.Return
		if o.Outcome == Unknown {
			in.Ret, ret = never, end+1
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: in, Call: o.Call, Output: outp, Return: ret})
	}
	return out
}
