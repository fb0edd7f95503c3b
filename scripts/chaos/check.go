package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Check names, as they appear in violations.
const (
	CheckLinearizable = "linearizability"
	CheckFencing      = "fencing"
	CheckResource     = "fenced-resource"
	CheckBelief       = "belief-overlap"
	CheckLostRelease  = "lost-release"
	CheckEarlyExpiry  = "early-expiry"
	CheckRecovery     = "recovery"
	CheckConvergence  = "convergence"
	CheckDeadHolder   = "dead-holder-expiry"
)

// Violation is one broken invariant.
type Violation struct {
	Check   string
	Message string
	Ops     []int // operation ids involved, for the history excerpt
}

// CheckConfig tunes the checker.
type CheckConfig struct {
	// Tolerance is subtracted from every lease's earliest end, for clock
	// truncation to milliseconds (default 5 ms).
	Tolerance time.Duration
	// LinearizabilityTimeout bounds porcupine (default 60 s); a timeout is
	// reported as inconclusive, not as a violation.
	LinearizabilityTimeout time.Duration
	// VisualizationDir receives porcupine's HTML visualisation when the
	// history is not linearizable. Empty: the temp dir.
	VisualizationDir string
}

func (c CheckConfig) withDefaults() CheckConfig {
	if c.Tolerance == 0 {
		c.Tolerance = 5 * time.Millisecond
	}
	if c.LinearizabilityTimeout == 0 {
		c.LinearizabilityTimeout = time.Minute
	}
	if c.VisualizationDir == "" {
		c.VisualizationDir = os.TempDir()
	}
	return c
}

// CheckResult is the checker's verdict.
type CheckResult struct {
	Violations []Violation
	// Linearizable is porcupine's answer: Ok, Illegal or Unknown (timed
	// out). Visualization is the HTML file written when Illegal.
	Linearizable  porcupine.CheckResult
	Visualization string
	CheckTime     time.Duration
}

// Check judges a history: linearizability, fencing, the fenced resource,
// belief windows, lost releases and early expiry.
func Check(h History, cfg CheckConfig) *CheckResult {
	cfg = cfg.withDefaults()
	start := time.Now()
	r := &CheckResult{}
	r.Violations = append(r.Violations, checkFencing(h.Ops)...)
	r.Violations = append(r.Violations, checkResource(h.Writes)...)
	r.Violations = append(r.Violations, checkBeliefs(h.Ops, h.Margin)...)
	r.Violations = append(r.Violations, checkLostReleases(h.Ops)...)
	r.Violations = append(r.Violations, checkEarlyExpiry(h.Ops, int64(cfg.Tolerance))...)
	lin, viz, err := checkLinearizable(h, cfg)
	r.Linearizable, r.Visualization = lin, viz
	if lin == porcupine.Illegal {
		msg := "the history is not linearizable against the lock model"
		if viz != "" {
			msg += "; visualisation: " + viz
		}
		if err != nil {
			msg += fmt.Sprintf(" (visualisation failed: %v)", err)
		}
		r.Violations = append(r.Violations, Violation{Check: CheckLinearizable, Message: msg})
	}
	r.CheckTime = time.Since(start)
	return r
}

func checkLinearizable(h History, cfg CheckConfig) (porcupine.CheckResult, string, error) {
	model := lockModel(int64(cfg.Tolerance))
	res, info := porcupine.CheckOperationsVerbose(model, porcupineOps(h.Ops), cfg.LinearizabilityTimeout)
	if res != porcupine.Illegal {
		return res, "", nil
	}
	info.AddAnnotations(faultAnnotations(h.Faults))
	if err := os.MkdirAll(cfg.VisualizationDir, 0o755); err != nil {
		return res, "", err
	}
	path := filepath.Join(cfg.VisualizationDir, fmt.Sprintf("linearizability-%d.html", time.Now().UnixNano()))
	return res, path, porcupine.VisualizePath(model, info, path)
}

// faultAnnotations shows the fault schedule beside the clients.
func faultAnnotations(faults []FaultEvent) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, f := range faults {
		out = append(out, porcupine.Annotation{Tag: "faults", Start: f.Start, End: f.End,
			Description: f.Kind, Details: f.Detail, BackgroundColor: "#f4c7c3"})
	}
	return out
}

// checkFencing: tokens are unique over all grants, and a grant that
// started after another returned has a higher token (per name).
func checkFencing(ops []Op) []Violation {
	var out []Violation
	seen := map[uint64]int{}
	for _, o := range ops {
		if o.Kind != Acquire || o.Outcome != OK {
			continue
		}
		if prev, dup := seen[o.Fence]; dup {
			out = append(out, Violation{Check: CheckFencing, Ops: []int{prev, o.ID},
				Message: fmt.Sprintf("two grants carry fencing token %d", o.Fence)})
		}
		seen[o.Fence] = o.ID
	}
	for _, list := range byName(ops) {
		out = append(out, fenceOrder(grantsOf(list))...)
	}
	return out
}

func grantsOf(ops []Op) []Op {
	var g []Op
	for _, o := range ops {
		if o.Kind == Acquire && o.Outcome == OK {
			g = append(g, o)
		}
	}
	return g
}

// fenceOrder finds grants whose token is not above every token granted
// (and returned) before they were requested.
func fenceOrder(grants []Op) []Violation {
	byRet := append([]Op(nil), grants...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].Return < byRet[j].Return })
	// best[i] indexes the highest token among byRet[:i+1].
	best := make([]int, len(byRet))
	for i := range byRet {
		best[i] = i
		if i > 0 && byRet[best[i-1]].Fence > byRet[i].Fence {
			best[i] = best[i-1]
		}
	}
	var out []Violation
	for _, b := range grants {
		n := sort.Search(len(byRet), func(i int) bool { return byRet[i].Return >= b.Call })
		if n == 0 {
			continue
		}
		if a := byRet[best[n-1]]; a.Fence >= b.Fence {
			out = append(out, Violation{Check: CheckFencing, Ops: []int{a.ID, b.ID},
				Message: fmt.Sprintf("fencing token went down on %q: #%d granted at %s, then #%d requested at %s",
					b.Name, a.Fence, ms(a.Return), b.Fence, ms(b.Call))})
		}
	}
	return out
}

// checkResource: per name, accepted tokens never go below the highest
// accepted before, a write is refused only below it, and a holder writing
// inside its belief window is never refused (that would mean a newer
// holder wrote while this one still held the lock).
func checkResource(writes []Write) []Violation {
	var out []Violation
	high := map[string]uint64{}
	for _, w := range writes {
		h := high[w.Name]
		switch {
		case w.Accepted && w.Token < h:
			out = append(out, Violation{Check: CheckResource, Message: fmt.Sprintf(
				"the fenced resource accepted stale token %d on %q at %s after seeing %d", w.Token, w.Name, ms(w.Time), h)})
		case !w.Accepted && w.Token >= h:
			out = append(out, Violation{Check: CheckResource, Message: fmt.Sprintf(
				"the fenced resource refused token %d on %q at %s though its highest was %d", w.Token, w.Name, ms(w.Time), h)})
		case !w.Accepted && w.InBelief:
			out = append(out, Violation{Check: CheckResource, Message: fmt.Sprintf(
				"c%d's write of token %d on %q at %s, inside its belief window, was refused: token %d was written first",
				w.Client, w.Token, w.Name, ms(w.Time), h)})
		}
		if w.Accepted && w.Token > h {
			high[w.Name] = w.Token
		}
	}
	return out
}

// resourceSummary counts the fenced writes, for the report.
func resourceSummary(writes []Write) string {
	var acc, rej, pausedRej, pausedAcc int
	for _, w := range writes {
		switch {
		case w.Paused && w.Accepted:
			pausedAcc++
		case w.Paused:
			pausedRej++
		case w.Accepted:
			acc++
		default:
			rej++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d writes by holders accepted, %d refused; after a pause past the lifetime: %d refused (fenced), %d accepted (no newer holder had written)",
		acc, rej, pausedRej, pausedAcc)
	return b.String()
}
