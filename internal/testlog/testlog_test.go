package testlog

import (
	"fmt"
	"testing"
)

// recordingT records what the writer passes to Log and the cleanups it
// registers.
type recordingT struct {
	testing.TB
	logs     []string
	cleanups []func()
}

func (r *recordingT) Log(args ...any)  { r.logs = append(r.logs, fmt.Sprint(args...)) }
func (r *recordingT) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// TestWriterStopsAtCleanup: lines reach t.Log without their newline
// until the test's cleanup runs; later writes are dropped (t.Log on a
// finished test panics) but still succeed for the writer.
func TestWriterStopsAtCleanup(t *testing.T) {
	rt := &recordingT{TB: t}
	w := Writer(rt)
	if _, err := w.Write([]byte("during\n")); err != nil {
		t.Fatal(err)
	}
	for _, f := range rt.cleanups {
		f()
	}
	if n, err := w.Write([]byte("late line\n")); n != 10 || err != nil {
		t.Fatalf("late write: %d %v", n, err)
	}
	if len(rt.logs) != 1 || rt.logs[0] != "during" {
		t.Fatalf("logged %q, want only \"during\"", rt.logs)
	}
}
