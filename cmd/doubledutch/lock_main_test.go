package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// lockBinary is doubledutch built once per test binary run by TestMain,
// for the tests that run `doubledutch lock` as a real process.
var lockBinary string

// TestMain builds the binary once, and doubles as the command that the
// lock tests run under a lock (when DDTEST_CHILD is set).
func TestMain(m *testing.M) {
	if os.Getenv("DDTEST_CHILD") != "" {
		os.Exit(childMain())
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "doubledutch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if lockBinary, err = ddtest.BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// childMain is the command run under `doubledutch lock` in the tests. It
// connects to DDTEST_ADDR and reports its environment (whether the API
// key reached it, the lock's name and fencing token); the test sees it
// die as the connection's end (the kernel closes it at exit). With
// DDTEST_EXIT it exits at once with that code; otherwise it waits for
// SIGINT/SIGTERM, reports the signal and exits with DDTEST_ON_SIGNAL's
// code, or ignores it when that is "ignore".
func childMain() int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	conn, err := net.Dial("tcp", os.Getenv("DDTEST_ADDR"))
	if err != nil {
		return 3
	}
	fmt.Fprintf(conn, "pid=%d key=%t lock=%s fence=%s\n", os.Getpid(), os.Getenv("DOUBLEDUTCH_API_KEY") != "",
		os.Getenv("DOUBLEDUTCH_LOCK"), os.Getenv("DOUBLEDUTCH_FENCE"))
	if code := os.Getenv("DDTEST_EXIT"); code != "" {
		n, _ := strconv.Atoi(code)
		return n
	}
	for sig := range sigs {
		fmt.Fprintf(conn, "signal=%s\n", strings.ToUpper(sig.String()))
		if on := os.Getenv("DDTEST_ON_SIGNAL"); on != "ignore" {
			n, _ := strconv.Atoi(on)
			return n
		}
	}
	return 0
}
