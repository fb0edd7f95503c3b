package main

import (
	"context"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client/loadgen"
)

// TestFloorServerAnswersTheGenerator: the canned server answers the
// generator's acquire and release as the real service does, so the floor
// counts whole pairs and no errors.
func TestFloorServerAnswersTheGenerator(t *testing.T) {
	url, stop, err := floorServer()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cell := loadgen.Cell{Scenario: loadgen.Uncontended, Workers: 4, Count: 200, Lifetime: time.Minute}
	r, err := loadgen.Run(context.Background(), loadgen.Target{Endpoints: []string{url}}, cell, "test")
	if err != nil {
		t.Fatal(err)
	}
	if r.Pairs != 200 || r.Errors != 0 {
		t.Fatalf("floor: %d pairs, %d errors; want 200 pairs and none failed", r.Pairs, r.Errors)
	}
}

// TestWorkerCounts parses the -workers list and refuses what is not a
// positive count.
func TestWorkerCounts(t *testing.T) {
	if got, err := workerCounts("1,8,64"); err != nil || len(got) != 3 || got[2] != 64 {
		t.Fatalf("workerCounts(1,8,64) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "8,x", "-1"} {
		if _, err := workerCounts(bad); err == nil {
			t.Errorf("workerCounts(%q) accepted", bad)
		}
	}
}
