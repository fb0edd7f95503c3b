package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of a run: violations first, then the figures.
type Report struct {
	Seed     int64
	Duration time.Duration
	Faults   []string
	Dir      string
	Broken   bool

	Check          *CheckResult
	LiveViolations []Violation // recovery, convergence, dead holders
	Violations     []Violation // all of them

	RecoveryHealthy, RecoveryGrant time.Duration
	DeadHolderKilled               string
	DeadHolderLifetime             time.Duration
	DeadHolderFreed                time.Duration
	Leftovers                      []string
	Convergence                    []nodeDigest

	Ops          int
	OpCounts     map[string]int // "acquire ok" -> n
	Availability availability
	Legacy       legacyAvailability
	LegacyCalls  []LegacyCall
	LeaderFaults []leaderFault
	Resource     string
	FaultLog     []FaultEvent
	HistoryFile  string

	history History
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// availability counts operations with a definite answer, inside fault
// windows and outside them.
type availability struct {
	FaultOps, FaultDefinite, FaultOK                  int
	QuietOps, QuietDefinite, QuietOK                  int
	FaultAttempts, FaultAttemptsFirm, FaultAttemptsOK int
	QuietAttempts, QuietAttemptsFirm, QuietAttemptsOK int
}

// leaderFault is a fault that hit the leader and the time to the next
// grant requested after it began.
type leaderFault struct {
	Kind      string
	At        int64
	NextGrant time.Duration // -1: none
	Failover  time.Duration // probe of the survivors (FaultEvent.Failover)
}

func (r *Report) fill(h History) {
	r.Ops = len(h.Ops)
	r.OpCounts = map[string]int{}
	for _, o := range h.Ops {
		r.OpCounts[o.Kind.String()+" "+o.Outcome.String()]++
	}
	r.Availability = measureAvailability(h)
	r.LeaderFaults = leaderFaults(h, r.LegacyCalls)
	r.Resource = resourceSummary(h.Writes)
	r.FaultLog = h.Faults
	r.history = h
	if r.Dir != "" {
		r.HistoryFile = r.writeHistory()
	}
}

// inFault reports whether t falls inside a node or network fault.
func inFault(faults []FaultEvent, t int64) bool {
	for _, f := range faults {
		if f.Kind != FaultClientPause && t >= f.Start && t <= f.End {
			return true
		}
	}
	return false
}

func measureAvailability(h History) availability {
	var a availability
	for _, o := range h.Ops {
		if inFault(h.Faults, o.Call) {
			a.FaultOps++
			a.FaultDefinite += b2i(o.Outcome.definite())
			a.FaultOK += b2i(o.Outcome == OK)
		} else {
			a.QuietOps++
			a.QuietDefinite += b2i(o.Outcome.definite())
			a.QuietOK += b2i(o.Outcome == OK)
		}
	}
	for _, at := range h.Attempts {
		if inFault(h.Faults, at.Start) {
			a.FaultAttempts++
			a.FaultAttemptsFirm += b2i(at.Result == "definite")
			a.FaultAttemptsOK += b2i(at.OK)
		} else {
			a.QuietAttempts++
			a.QuietAttemptsFirm += b2i(at.Result == "definite")
			a.QuietAttemptsOK += b2i(at.OK)
		}
	}
	return a
}

func leaderFaults(h History, legacy []LegacyCall) []leaderFault {
	var out []leaderFault
	for _, f := range h.Faults {
		if f.Leader {
			out = append(out, leaderFault{Kind: f.Kind, At: f.Start, NextGrant: nextGrant(h, legacy, f.Start), Failover: f.Failover})
		}
	}
	return out
}

func pct(n, of int) string {
	if of == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% of %d", 100*float64(n)/float64(of), of)
}

// String renders the report.
func (r *Report) String() string {
	var b strings.Builder
	mode := ""
	if r.Broken {
		mode = " against the DELIBERATELY BROKEN server (-tags ddbroken)"
	}
	fmt.Fprintf(&b, "DoubleDutch chaos run%s: seed %d, %v of faults (%s)\n", mode, r.Seed, r.Duration, strings.Join(r.Faults, ","))
	fmt.Fprintf(&b, "work dir: %s\n", r.Dir)
	if r.Failed() {
		fmt.Fprintf(&b, "RESULT: FAIL, %d violation(s)\n", len(r.Violations))
	} else {
		fmt.Fprintf(&b, "RESULT: PASS, no violation\n")
	}
	r.writeFigures(&b)
	r.writeFaults(&b)
	r.writeViolations(&b)
	return b.String()
}

func (r *Report) writeFigures(b *strings.Builder) {
	fmt.Fprintf(b, "\noperations: %d:", r.Ops)
	keys := make([]string, 0, len(r.OpCounts))
	for k := range r.OpCounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, " %s %d,", k, r.OpCounts[k])
	}
	fmt.Fprintln(b)
	if r.Check != nil {
		fmt.Fprintf(b, "linearizability (porcupine): %s, checked in %v\n", r.Check.Linearizable, r.Check.CheckTime.Round(time.Millisecond))
	}
	r.writeAvailability(b)
	fmt.Fprintln(b, "faults that hit the leader -> next successful grant requested after the fault began:")
	for _, lf := range r.LeaderFaults {
		next := "none"
		if lf.NextGrant >= 0 {
			next = lf.NextGrant.Round(time.Millisecond).String()
		}
		fmt.Fprintf(b, "  %-10s at %s: %s\n", lf.Kind, ms(lf.At), next)
	}
	fmt.Fprintf(b, "recovery after the faults stopped: every node agrees on a leader after %v, first grant after %v\n",
		r.RecoveryHealthy.Round(time.Millisecond), r.RecoveryGrant.Round(time.Millisecond))
	if r.DeadHolderLifetime > 0 {
		fmt.Fprintf(b, "dead holder across a kill -9 of the leader (%s): lifetime %v, gone %v after it was requested\n",
			r.DeadHolderKilled, r.DeadHolderLifetime, r.DeadHolderFreed.Round(time.Millisecond))
	}
	for _, l := range r.Leftovers {
		fmt.Fprintf(b, "leftover lock: %s\n", l)
	}
	for _, d := range r.Convergence {
		fmt.Fprintf(b, "replica %s\n", d)
	}
	fmt.Fprintf(b, "fenced resource: %s\n", r.Resource)
	if r.HistoryFile != "" {
		fmt.Fprintf(b, "history: %s\n", r.HistoryFile)
	}
}

func (r *Report) writeFaults(b *strings.Builder) {
	fmt.Fprintf(b, "\nfaults (%d):\n", len(r.FaultLog))
	for _, f := range r.FaultLog {
		fmt.Fprintf(b, "  [%s .. %s] %-12s %s\n", ms(f.Start), ms(f.End), f.Kind, f.Detail)
	}
}

func (r *Report) writeViolations(b *strings.Builder) {
	if !r.Failed() {
		return
	}
	counts := map[string]int{}
	for _, v := range r.Violations {
		counts[v.Check]++
	}
	checks := make([]string, 0, len(counts))
	for c := range counts {
		checks = append(checks, c)
	}
	sort.Strings(checks)
	fmt.Fprint(b, "\nviolations:")
	for _, c := range checks {
		fmt.Fprintf(b, " %s %d,", c, counts[c])
	}
	fmt.Fprintln(b)
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(b, "  ... and %d more\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(b, "  [%s] %s\n", v.Check, v.Message)
		for _, line := range r.excerpt(v.Ops) {
			fmt.Fprintf(b, "      %s\n", line)
		}
	}
}

// excerpt lists the operations a violation names, and every operation on
// the same names in between.
func (r *Report) excerpt(ids []int) []string {
	if len(ids) == 0 || len(r.history.Ops) == 0 {
		return nil
	}
	lo, hi := int64(1<<62), int64(0)
	names := map[string]bool{}
	for _, id := range ids {
		if id < 0 || id >= len(r.history.Ops) {
			continue
		}
		o := r.history.Ops[id]
		lo, hi = min(lo, o.Call), max(hi, o.Return)
		names[o.Name] = true
	}
	var ops []Op
	for _, o := range r.history.Ops {
		if names[o.Name] && o.Return >= lo && o.Call <= hi {
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var out []string
	for i := range ops {
		if len(out) == 15 {
			out = append(out, fmt.Sprintf("... %d more", len(ops)-15))
			break
		}
		mark := " "
		for _, id := range ids {
			if id == ops[i].ID {
				mark = "*"
			}
		}
		out = append(out, mark+" "+ops[i].String())
	}
	return out
}
