package api

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/doubledutch/doubledutch/fsm"
)

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestAppliedStatsHandoffMemoryStaysBounded: one lock taken and given back
// over and over, and many locks freed and never taken again, keep the
// handoff bookkeeping small (it once kept every stale entry of a name
// freed repeatedly, and scanned them all on every free), while handoffs
// and hold times are still measured.
func TestAppliedStatsHandoffMemoryStaysBounded(t *testing.T) {
	a := newAppliedStats(prometheus.NewRegistry())
	for i := int64(0); i < 1000; i++ {
		a.observe(fsm.Result{Outcome: fsm.Granted, Now: 10 * i, Lock: fsm.Lock{Name: "hot", GrantedAt: 10 * i}})
		a.observe(fsm.Result{Outcome: fsm.Released, Now: 10*i + 5, Freed: []string{"hot"}})
	}
	if len(a.order) > 2*len(a.freed)+64 {
		t.Fatalf("one name freed 1000 times left %d entries for %d live", len(a.order), len(a.freed))
	}
	if got := histCount(t, a.handoff); got != 999 {
		t.Fatalf("handoffs measured: %d, want 999", got)
	}
	if got := histCount(t, a.hold); got != 1000 {
		t.Fatalf("holds measured: %d, want 1000", got)
	}
	for i := 0; i < 3*maxFreedTracked; i++ {
		name := "cold-" + strconv.Itoa(i)
		a.observe(fsm.Result{Outcome: fsm.Granted, Now: 1, Lock: fsm.Lock{Name: name, GrantedAt: 1}})
		a.observe(fsm.Result{Outcome: fsm.Ticked, Now: 2, Freed: []string{name}})
	}
	if len(a.freed) > maxFreedTracked || len(a.order) > 2*maxFreedTracked+64 || len(a.held) != 0 {
		t.Fatalf("after %d expiries: %d freed, %d ordered, %d held", 3*maxFreedTracked, len(a.freed), len(a.order), len(a.held))
	}
	// The most recent frees are still remembered; the oldest are not.
	newest := "cold-" + strconv.Itoa(3*maxFreedTracked-1)
	if _, ok := a.freed[newest]; !ok {
		t.Fatal("the newest free was forgotten")
	}
	if _, ok := a.freed["cold-0"]; ok {
		t.Fatal("the oldest free was kept past the bound")
	}
}
