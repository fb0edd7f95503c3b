package fsm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// step is one command of a transition scenario and what it must produce.
// Zero values of fence, deadline and now mean "not checked"; freed and
// held are always checked, so every case states the whole visible effect.
type step struct {
	c        Command
	want     Outcome
	fence    uint64
	deadline int64
	now      int64
	freed    []string
	held     string // comma-joined names of held locks after the step
	check    func(t *testing.T, r Result, m *Machine)
}

func heldNames(m *Machine) string {
	var names []string
	for _, l := range m.List("", "", 0) {
		names = append(names, l.Name)
	}
	return strings.Join(names, ",")
}

// nextDeadline and minDeadline read the deadline index and the name index;
// they disagree when a transition forgets to update one of them. -1: none.
func nextDeadline(m *Machine) int64 {
	if d, ok := m.NextDeadline(); ok {
		return d
	}
	return -1
}

func minDeadline(m *Machine) int64 {
	min := int64(-1)
	for _, l := range m.List("", "", 0) {
		if min == -1 || l.Deadline < min {
			min = l.Deadline
		}
	}
	return min
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	r := newRig(t)
	for i, s := range steps {
		res := r.do(s.c)
		where := func(f string, args ...any) {
			t.Helper()
			t.Errorf("step %d (%s %q @%d): "+f, append([]any{i + 1, s.c.Kind, s.c.Name, s.c.Stamp}, args...)...)
		}
		if res.Outcome != s.want {
			where("outcome %v, want %v", res.Outcome, s.want)
		}
		if res.Index != uint64(i+1) && !res.Duplicate {
			where("index %d, want %d", res.Index, i+1)
		}
		if s.fence != 0 && res.Lock.Fence != s.fence {
			where("fence %d, want %d", res.Lock.Fence, s.fence)
		}
		if s.deadline != 0 && res.Lock.Deadline != s.deadline {
			where("deadline %d, want %d", res.Lock.Deadline, s.deadline)
		}
		if s.now != 0 && res.Now != s.now {
			where("now %d, want %d", res.Now, s.now)
		}
		if res.Now != r.m.Now() {
			where("result now %d, machine now %d", res.Now, r.m.Now())
		}
		if len(res.Freed) != 0 || len(s.freed) != 0 {
			if !reflect.DeepEqual(res.Freed, s.freed) {
				where("freed %q, want %q", res.Freed, s.freed)
			}
		}
		if got := heldNames(r.m); got != s.held {
			where("held %q, want %q", got, s.held)
		}
		if got, want := nextDeadline(r.m), minDeadline(r.m); got != want {
			where("NextDeadline %d, but the earliest held deadline is %d", got, want)
		}
		if s.check != nil {
			s.check(t, res, r.m)
		}
	}
}

func TestTransitions(t *testing.T) {
	const L = 5000
	cases := []struct {
		name  string
		steps []step
	}{
		{"acquire free", []step{
			{c: acq(1000, "a", 1, L), want: Granted, fence: 1, deadline: 1000 + L, now: 1000, held: "a",
				check: func(t *testing.T, r Result, m *Machine) {
					want := Lock{Name: "a", Token: tok(1), Owner: "owner-a", Fence: 1, GrantedAt: 1000, Lifetime: L, Deadline: 1000 + L}
					if r.Lock != want {
						t.Errorf("granted %+v, want %+v", r.Lock, want)
					}
					if got, _ := m.Get("a"); got != want {
						t.Errorf("Get = %+v, want %+v", got, want)
					}
				}},
		}},
		{"acquire held by another token is busy and hides the token", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: acq(1500, "a", 2, L), want: Busy, fence: 1, deadline: 1000 + L, held: "a",
				check: func(t *testing.T, r Result, m *Machine) {
					if !r.Lock.Token.IsZero() || r.Lock.Owner != "owner-a" {
						t.Errorf("busy holder %+v: want zero token, owner-a", r.Lock)
					}
					if l, _ := m.Get("a"); l.Token != tok(1) {
						t.Errorf("holder token changed to %v", l.Token)
					}
				}},
		}},
		{"acquire by the same token answers the existing grant", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: acq(2000, "a", 1, 9000), want: Granted, fence: 1, deadline: 1000 + L, held: "a",
				check: func(t *testing.T, r Result, m *Machine) {
					if r.Lock.Token != tok(1) || r.Lock.GrantedAt != 1000 {
						t.Errorf("re-grant %+v, want the original", r.Lock)
					}
				}},
		}},
		{"release with the right token", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: rel(1100, "a", 1), want: Released, fence: 1, freed: []string{"a"}, held: ""},
		}},
		{"release with a wrong token", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: rel(1100, "a", 2), want: NotHeld, held: "a"},
		}},
		{"release of a free name", []step{
			{c: rel(1100, "nobody", 1), want: NotHeld, held: ""},
		}},
		{"release after expiry is not held", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: tick(1000 + L), want: Ticked, freed: []string{"a"}, held: ""},
			{c: rel(1000+L+1, "a", 1), want: NotHeld, held: ""},
		}},
		{"refresh moves the deadline from its own stamp", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: ref(3000, "a", 1, L), want: Refreshed, fence: 1, deadline: 3000 + L, held: "a",
				check: func(t *testing.T, r Result, m *Machine) {
					if r.Lock.GrantedAt != 1000 || r.Lock.Token != tok(1) {
						t.Errorf("refresh changed grant fields: %+v", r.Lock)
					}
					if d, _ := m.NextDeadline(); d != 3000+L {
						t.Errorf("NextDeadline %d, want %d", d, 3000+L)
					}
				}},
			{c: tick(1000 + L), want: Ticked, held: "a"},
			{c: tick(3000 + L), want: Ticked, freed: []string{"a"}, held: ""},
		}},
		{"refresh with a stale stamp counts from that stamp", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: tick(3000), want: Ticked, held: "a"},
			{c: ref(2000, "a", 1, L), want: Refreshed, deadline: 2000 + L, now: 3000, held: "a"},
		}},
		{"refresh with a wrong token leaves the deadline", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: ref(3000, "a", 2, L), want: NotHeld, held: "a"},
			{c: tick(1000 + L), want: Ticked, freed: []string{"a"}, held: ""},
		}},
		{"refresh after expiry is not held", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: ref(1000+L, "a", 1, L), want: NotHeld, freed: []string{"a"}, held: ""},
		}},
		{"expiry exactly at the deadline, not one ms before", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: tick(1000 + L - 1), want: Ticked, now: 1000 + L - 1, held: "a"},
			{c: tick(1000 + L), want: Ticked, now: 1000 + L, freed: []string{"a"}, held: ""},
		}},
		{"every command expires due locks, not only ticks", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: acq(1000+L, "b", 2, L), want: Granted, freed: []string{"a"}, held: "b"},
			{c: acq(1000+L, "a", 3, L), want: Granted, fence: 3, held: "a,b"},
		}},
		{"expired lock is free for a new holder in the same command", []step{
			{c: acq(1000, "a", 1, L), want: Granted, held: "a"},
			{c: acq(1000+L, "a", 2, L), want: Granted, fence: 2, freed: []string{"a"}, held: "a"},
		}},
		{"expiry order is deadline then name", []step{
			{c: acq(1000, "b", 1, 100), want: Granted, held: "b"},
			{c: acq(1000, "a", 2, 100), want: Granted, held: "a,b"},
			{c: acq(1000, "c", 3, 50), want: Granted, held: "a,b,c"},
			{c: acq(1000, "d", 4, L), want: Granted, held: "a,b,c,d"},
			{c: tick(2000), want: Ticked, freed: []string{"c", "a", "b"}, held: "d"},
		}},
		{"release lists expiries before its own name", []step{
			{c: acq(1000, "a", 1, 100), want: Granted, held: "a"},
			{c: acq(1000, "b", 2, L), want: Granted, held: "a,b"},
			{c: rel(2000, "b", 2), want: Released, freed: []string{"a", "b"}, held: ""},
		}},
		{"clock never goes backwards", []step{
			{c: tick(5000), want: Ticked, now: 5000, held: ""},
			{c: tick(3000), want: Ticked, now: 5000, held: ""},
		}},
		{"MaxClockStep caps a jump", []step{
			{c: tick(1000), want: Ticked, now: 1000, held: ""},
			{c: tick(1000 + MaxClockStep), want: Ticked, now: 1000 + MaxClockStep, held: ""},
			{c: tick(1000 + 2*MaxClockStep + 1), want: Ticked, now: 1000 + 2*MaxClockStep, held: ""},
			{c: tick(1 << 62), want: Ticked, now: 1000 + 3*MaxClockStep, held: ""},
		}},
		{"a far-future stamp cannot expire a lock early", []step{
			{c: acq(1000, "a", 1, MaxClockStep+L), want: Granted, held: "a"},
			{c: tick(1 << 40), want: Ticked, now: 1000 + MaxClockStep, held: "a"},
			{c: tick(1 << 40), want: Ticked, now: 1000 + 2*MaxClockStep, freed: []string{"a"}, held: ""},
		}},
		{"a stale stamp takes its deadline from its own reading", []step{
			{c: tick(5000), want: Ticked, held: ""},
			{c: acq(4000, "a", 1, L), want: Granted, deadline: 4000 + L, now: 5000, held: "a"},
		}},
		{"fences increase across grants of different and same names", []step{
			{c: acq(1000, "a", 1, L), want: Granted, fence: 1, held: "a"},
			{c: acq(1000, "b", 2, L), want: Granted, fence: 2, held: "a,b"},
			{c: rel(1000, "a", 1), want: Released, fence: 1, freed: []string{"a"}, held: "b"},
			{c: tick(1001), want: Ticked, held: "b"},
			{c: acq(1002, "a", 1, L), want: Granted, fence: 5, held: "a,b"},
			{c: rel(1003, "a", 1), want: Released, freed: []string{"a"}, held: "b"},
			{c: acq(1004, "a", 3, L), want: Granted, fence: 7, held: "a,b"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.steps) })
	}
}

func TestAnnounceAndNodes(t *testing.T) {
	r := newRig(t)
	for _, c := range []Command{
		announce(1, "n2", "http://n2:8080"),
		announce(2, "n1", "http://n1:8080"),
		announce(3, "n1", "http://n1:9090"), // a node re-announces after moving
	} {
		if res := r.do(c); res.Outcome != Announced {
			t.Fatalf("announce: %v", res.Outcome)
		}
	}
	if got := r.m.APIURL("n1"); got != "http://n1:9090" {
		t.Errorf("APIURL(n1) = %q", got)
	}
	if got := r.m.APIURL("unknown"); got != "" {
		t.Errorf("APIURL(unknown) = %q", got)
	}
	want := []NodeURL{{"n1", "http://n1:9090"}, {"n2", "http://n2:8080"}}
	if got := r.m.Nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes = %v, want %v", got, want)
	}
}

func TestListPagination(t *testing.T) {
	r := newRig(t)
	for i, n := range []string{"b/1", "a/2", "ab", "a/1", "a/3", "a"} {
		r.do(acq(1000, n, byte(i+1), 5000))
	}
	names := func(ls []Lock) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.Name)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"", "", 0, "a,a/1,a/2,a/3,ab,b/1"},
		{"a/", "", 0, "a/1,a/2,a/3"},
		{"a/", "", 2, "a/1,a/2"},
		{"a/", "a/2", 0, "a/3"},
		{"a/", "a/0", 0, "a/1,a/2,a/3"}, // after need not be a held name
		{"a/", "a", 0, "a/1,a/2,a/3"},   // after sorts before the prefix
		{"a/", "a/3", 0, ""},
		{"a/", "zzz", 0, ""},
		{"", "a/3", 2, "ab,b/1"},
		{"c", "", 0, ""},
		{"", "", -1, "a,a/1,a/2,a/3,ab,b/1"},
	}
	for _, tc := range cases {
		if got := names(r.m.List(tc.prefix, tc.after, tc.limit)); got != tc.want {
			t.Errorf("List(%q, %q, %d) = %q, want %q", tc.prefix, tc.after, tc.limit, got, tc.want)
		}
	}
	// Paging with the last name as the cursor visits each lock once.
	var all []string
	for after, pages := "", 0; pages < 10; pages++ { // bounded: a cursor bug must not hang
		page := r.m.List("", after, 2)
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			all = append(all, l.Name)
		}
		after = page[len(page)-1].Name
	}
	if got := strings.Join(all, ","); got != "a,a/1,a/2,a/3,ab,b/1" {
		t.Errorf("paged = %q", got)
	}
}

func TestAccessors(t *testing.T) {
	r := newRig(t)
	if _, ok := r.m.NextDeadline(); ok {
		t.Error("empty machine has a next deadline")
	}
	r.do(acq(1000, "x", 1, 700))
	r.do(acq(1200, "y", 2, 300))
	if d, ok := r.m.NextDeadline(); !ok || d != 1500 {
		t.Errorf("NextDeadline = %d, %v; want 1500", d, ok)
	}
	if r.m.Len() != 2 || r.m.AppliedIndex() != 2 || r.m.Now() != 1200 {
		t.Errorf("Len %d AppliedIndex %d Now %d", r.m.Len(), r.m.AppliedIndex(), r.m.Now())
	}
	if _, ok := r.m.Get("z"); ok {
		t.Error("Get of a free name reports held")
	}
}

func TestApplyPanicsOnUndecodable(t *testing.T) {
	m := New(Options{})
	m.ApplyCommand(1, acq(1000, "a", 1, 5000))
	before := stateBytes(t, m)
	func() {
		defer func() {
			p := recover()
			if p == nil || !strings.Contains(p.(string), "undecodable") || !strings.Contains(p.(string), "index 2") {
				t.Errorf("recover() = %v, want an undecodable panic naming index 2", p)
			}
		}()
		m.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{0xee, 1}})
	}()
	// The state lock must be free again, or every later read deadlocks.
	if !m.mu.TryLock() {
		t.Fatal("Apply panicked holding the state lock")
	}
	m.mu.Unlock()
	if got := stateBytes(t, m); string(got) != string(before) {
		t.Error("state changed by an undecodable entry")
	}
}

func TestApplyBatchMatchesApply(t *testing.T) {
	cmds := []Command{acq(1000, "a", 1, 500), acq(1100, "a", 2, 500), tick(1600), acq(1700, "a", 2, 500), rel(1800, "a", 2)}
	var seen []Result
	batch := New(Options{OnApply: func(r Result) { seen = append(seen, r) }})
	logs := []*raft.Log{{Index: 1, Type: raft.LogConfiguration}}
	for i, c := range cmds {
		logs = append(logs, logFor(uint64(i+2), c))
	}
	out := batch.ApplyBatch(logs)
	if len(out) != len(logs) || out[0] != nil {
		t.Fatalf("ApplyBatch returned %d results, first %v", len(out), out[0])
	}
	single := New(Options{})
	for i, c := range cmds {
		want := single.Apply(logFor(uint64(i+2), c))
		if !reflect.DeepEqual(out[i+1], want) {
			t.Errorf("entry %d: batch %+v, single %+v", i+2, out[i+1], want)
		}
		if !reflect.DeepEqual(seen[i], want) {
			t.Errorf("OnApply %d: %+v, want %+v", i, seen[i], want)
		}
	}
	if len(seen) != len(cmds) {
		t.Errorf("OnApply called %d times, want %d", len(seen), len(cmds))
	}
	if string(stateBytes(t, batch)) != string(stateBytes(t, single)) {
		t.Error("batch and single apply diverged")
	}
}
