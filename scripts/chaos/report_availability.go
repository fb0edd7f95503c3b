package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// legacyAvailability counts the raw-HTTP original-API calls (no retries)
// inside fault windows and outside them.
type legacyAvailability struct {
	FaultCalls, FaultDefinite, FaultOK int
	QuietCalls, QuietDefinite, QuietOK int
	// FaultIndefinite counts the calls in fault windows without a
	// definite answer by HTTP status (0: no answer at all).
	FaultIndefinite map[string]int
}

func measureLegacy(calls []LegacyCall, faults []FaultEvent) legacyAvailability {
	a := legacyAvailability{FaultIndefinite: map[string]int{}}
	for _, c := range calls {
		if inFault(faults, c.Start) {
			if !c.Definite {
				a.FaultIndefinite[fmt.Sprintf("%d %s", c.Status, c.Err)]++
			}
			a.FaultCalls++
			a.FaultDefinite += b2i(c.Definite)
			a.FaultOK += b2i(c.OK)
		} else {
			a.QuietCalls++
			a.QuietDefinite += b2i(c.Definite)
			a.QuietOK += b2i(c.OK)
		}
	}
	return a
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nextGrant is the time from start to the return of the first grant
// requested at or after it, by the workload or a raw-HTTP client; -1 if
// none came.
func nextGrant(h History, legacy []LegacyCall, start int64) time.Duration {
	best := time.Duration(-1)
	take := func(d time.Duration) {
		if best < 0 || d < best {
			best = d
		}
	}
	for _, o := range h.Ops {
		if o.Kind == Acquire && o.Outcome == OK && o.LastSend >= start {
			take(time.Duration(o.Return - start))
		}
	}
	for _, c := range legacy {
		if !c.Release && c.OK && c.Start >= start {
			take(time.Duration(c.End - start))
		}
	}
	return best
}

// failoverSummary is "p50 X, max Y over n" of the next-grant times of the
// leader faults of one kind ("none" counts as missing).
func failoverSummary(lfs []leaderFault, kind string, probe bool) string {
	var ds []time.Duration
	missing := 0
	for _, lf := range lfs {
		if lf.Kind != kind {
			continue
		}
		d := lf.NextGrant
		if probe {
			d = lf.Failover
		}
		if d < 0 {
			missing++
			continue
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return fmt.Sprintf("no %s of the leader with a later grant (%d without)", kind, missing)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	s := fmt.Sprintf("p50 %v, max %v over %d", ds[(len(ds)-1)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	if missing > 0 {
		s += fmt.Sprintf(" (%d with no grant after)", missing)
	}
	return s
}

// writeAvailability prints, for fault windows and quiet times, the share
// of calls with a definite answer and the share that succeeded: for the
// workload's operations (the harness retries them), for single Go-client
// calls (no retries), and for raw-HTTP original-API calls (no retries).
func (r *Report) writeAvailability(b *strings.Builder) {
	a, l := r.Availability, r.Legacy
	fmt.Fprintln(b, "availability (definite answer / succeeded), during faults | outside faults:")
	fmt.Fprintf(b, "  workload operations (harness retries):   %s / %s | %s / %s\n",
		pct(a.FaultDefinite, a.FaultOps), pct(a.FaultOK, a.FaultOps), pct(a.QuietDefinite, a.QuietOps), pct(a.QuietOK, a.QuietOps))
	fmt.Fprintf(b, "  Go client calls, no retries:             %s / %s | %s / %s\n",
		pct(a.FaultAttemptsFirm, a.FaultAttempts), pct(a.FaultAttemptsOK, a.FaultAttempts),
		pct(a.QuietAttemptsFirm, a.QuietAttempts), pct(a.QuietAttemptsOK, a.QuietAttempts))
	fmt.Fprintf(b, "  raw HTTP, original API, no retries:      %s / %s | %s / %s\n",
		pct(l.FaultDefinite, l.FaultCalls), pct(l.FaultOK, l.FaultCalls), pct(l.QuietDefinite, l.QuietCalls), pct(l.QuietOK, l.QuietCalls))
	if len(l.FaultIndefinite) > 0 {
		codes := make([]string, 0, len(l.FaultIndefinite))
		for c := range l.FaultIndefinite {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		fmt.Fprint(b, "    raw HTTP calls without a definite answer during faults, by status (0: no answer):")
		for _, c := range codes {
			fmt.Fprintf(b, " %s: %d,", c, l.FaultIndefinite[c])
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "leader kill -9 -> next grant to any client: %s\n", failoverSummary(r.LeaderFaults, FaultKill, false))
	fmt.Fprintf(b, "leader kill -9 -> a survivor grants a fresh request: %s\n", failoverSummary(r.LeaderFaults, FaultKill, true))
	fmt.Fprintf(b, "leader SIGSTOP -> next grant to any client: %s\n", failoverSummary(r.LeaderFaults, FaultStop, false))
	fmt.Fprintf(b, "leader SIGSTOP -> a survivor grants a fresh request: %s\n", failoverSummary(r.LeaderFaults, FaultStop, true))
}
