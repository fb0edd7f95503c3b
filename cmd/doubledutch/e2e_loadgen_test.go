package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client/loadgen"
)

// TestLoadgenPairs drives both scenarios of the load generator against a
// real cluster, starting at a follower so that every worker follows the
// leader redirect: every pair must succeed, and no lock may stay held
// (each release went through).
func TestLoadgenPairs(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.leader()
	follower := ec.urls[(lead+1)%len(ec.urls)]
	target := loadgen.Target{Endpoints: []string{follower}, Key: testKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, sc := range []string{loadgen.Uncontended, loadgen.Contended} {
		r, err := loadgen.Run(ctx, target, loadgen.Cell{Scenario: sc, Workers: 4, Lifetime: time.Minute, Count: 200}, "t")
		if err != nil {
			t.Fatal(err)
		}
		if r.Errors != 0 || r.Pairs != 200 {
			t.Fatalf("%s: %d pairs, %d errors; want 200 pairs, no errors", sc, r.Pairs, r.Errors)
		}
		t.Logf("%s", r)
	}
	code, list, _ := ec.do(ec.client, http.MethodGet, ec.urls[lead]+"/v1/locks?prefix=load-", nil, "Authorization", "Bearer "+testKey)
	if locks, _ := list["locks"].([]any); code != http.StatusOK || len(locks) != 0 {
		t.Fatalf("after the run: %d %v; want 200 and no lock held", code, list)
	}
}
