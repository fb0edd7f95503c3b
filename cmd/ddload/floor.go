package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/doubledutch/doubledutch/client/loadgen"
)

// The floor mode measures HTTP alone: a net/http server in this process
// answers the v1 lock calls with canned answers of the real ones' size
// and headers, doing no Raft, no fsync and no lock logic, and the same
// generator drives it. Its pairs/s are the most any HTTP/1.1 lock service
// could answer on this machine with one kept-alive connection per worker,
// so a goal above it cannot be met by work on Raft or the state machine.
// It has both cores to itself, which a three-node cluster on the same
// cores does not: the bound is generous.

// floorGrant is a grant answer of the usual size.
const floorGrant = `{"name":"load-floor-uncontended-0","session_token":"0123456789abcdef0123456789abcdef",` +
	`"fence":123456,"owner":"","expires_at":"2026-12-03T10:00:00.000Z","lifetime":60}`

// floorServer starts the canned server on a free loopback port.
func floorServer() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	answer := func(body string) http.HandlerFunc {
		n := strconv.Itoa(len(body))
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			h["Content-Type"] = []string{"application/json; charset=utf-8"}
			h["Cache-Control"] = []string{"no-store"}
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["Content-Length"] = []string{n}
			_, _ = io.WriteString(w, body)
		}
	}
	mux.HandleFunc("POST /v1/locks/{name}", answer(floorGrant))
	mux.HandleFunc("DELETE /v1/locks/{name}", answer(`{"released":true}`))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// runFloor measures the canned server at each worker count, uncontended.
func runFloor(ctx context.Context, workers []int, warmup, duration time.Duration) error {
	url, stop, err := floorServer()
	if err != nil {
		return err
	}
	defer stop()
	for _, w := range workers {
		cell := loadgen.Cell{Scenario: loadgen.Uncontended, Workers: w, Warmup: warmup, Duration: duration, Lifetime: time.Minute}
		r, err := loadgen.Run(ctx, loadgen.Target{Endpoints: []string{url}}, cell, "floor")
		if err != nil {
			return err
		}
		fmt.Println(r)
	}
	return nil
}
