package ddtest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after timeout with
// what it waited for: tests wait on a condition with a deadline, never on
// a fixed sleep.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
