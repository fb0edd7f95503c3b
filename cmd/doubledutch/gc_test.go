package main

import (
	"runtime/debug"
	"testing"
)

// TestServeGCPercent: serve sets its GC target unless GOGC is given.
func TestServeGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	setGCPercent(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GC percent %d without GOGC; want %d", got, serveGCPercent)
	}
	setGCPercent(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d with GOGC given; want it left alone (100)", got)
	}
}
