// Package testlog sends a test's logs to t.Log, and collects output a
// test reads while others write: the one copy of each that the cluster,
// api and cmd tests share.
package testlog

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// writer passes each write to t.Log until the test's cleanup has run: a
// goroutine that outlives the test (a node shutting down, a child
// process's output copier) must not call t.Log on a finished test, which
// panics.
type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Writer returns a writer that logs through t until t's cleanup. Its own
// cleanup is registered now, so it runs after every cleanup registered
// later (which is where the goroutines that write are stopped).
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// New returns an hclog logger named name at level that logs through t.
func New(t testing.TB, name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: Writer(t)})
}

// Buffer collects output (a logger's, a child process's) that the test
// reads while writers still write: a bytes.Buffer behind a mutex.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
