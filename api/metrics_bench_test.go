package api

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/doubledutch/doubledutch/fsm"
)

// BenchmarkAppliedStatsObserve is the metrics hook's cost on Raft's apply
// goroutine: one grant and one release of a lock per two iterations, over
// 1,000 names.
func BenchmarkAppliedStatsObserve(b *testing.B) {
	a := newAppliedStats(prometheus.NewRegistry())
	names := make([]string, 1000)
	for i := range names {
		names[i] = "lock-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		name := names[(i/2)%len(names)]
		now := int64(i)
		if i%2 == 0 {
			a.observe(fsm.Result{Outcome: fsm.Granted, Now: now, Lock: fsm.Lock{Name: name, GrantedAt: now}})
		} else {
			a.observe(fsm.Result{Outcome: fsm.Released, Now: now, Freed: []string{name}})
		}
	}
}
