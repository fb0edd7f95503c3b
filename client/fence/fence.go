// Package fence is the protected resource's side of a DoubleDutch lock:
// it remembers the highest fencing token seen per resource key and refuses
// lower ones.
//
// A lease lock cannot stop a holder that was paused (GC, swap, a stopped
// VM) from acting after its lock expired and was granted to someone else.
// The fencing token can: every grant carries a token higher than every
// earlier grant's, so a resource that refuses a token lower than the
// highest it has admitted refuses exactly the writes of holders that have
// been superseded. Equal tokens are admitted: one holder writes many
// times.
//
// Guard does this in memory (New) or backed by a small file that survives
// restarts (Open). A resource that lives in a SQL database gets the same
// guarantee without a Guard by keeping the token in the row and writing
// with UPDATE ... WHERE fence <= ? in the same transaction as the write
// (see the example).
package fence

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrStale matches a token lower than one already admitted for its key.
var ErrStale = errors.New("fence: stale fencing token")

// StaleError is the refusal of a stale token.
type StaleError struct {
	Key     string
	Token   uint64 // the refused token
	Highest uint64 // the highest admitted for Key
}

// Error names the key, the refused token and the highest admitted.
func (e *StaleError) Error() string {
	return fmt.Sprintf("fence: token %d for %q is below %d, already admitted: its lock was superseded", e.Token, e.Key, e.Highest)
}

// Is makes the error match ErrStale.
func (e *StaleError) Is(target error) bool { return target == ErrStale }

// Guard remembers the highest fencing token per resource key. It is safe
// for concurrent use.
type Guard struct {
	mu      sync.Mutex
	highest map[string]uint64
	turns   map[string]*sync.Mutex // serialise Do per key
	path    string                 // "" in memory only
}

// New returns an in-memory guard: it forgets everything when the process
// ends, so use it where the resource itself does not outlive the process.
func New() *Guard {
	return &Guard{highest: make(map[string]uint64), turns: make(map[string]*sync.Mutex)}
}

// Open returns a guard backed by the file at path (created when missing):
// every raise of a key's highest token is written to it (to a temporary
// file, synced, then renamed over it) before the token is admitted, so a
// restart never forgets a token it admitted.
func Open(path string) (*Guard, error) {
	g := New()
	g.path = path
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return g, nil
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(data, &g.highest); err != nil {
		return nil, fmt.Errorf("fence: %s: %w", path, err)
	}
	if g.highest == nil {
		g.highest = make(map[string]uint64)
	}
	return g, nil
}

// Admit records token for key and returns nil if it is not lower than the
// highest admitted so far; otherwise a *StaleError (matching ErrStale).
// With a file, an error writing it refuses the token too.
func (g *Guard) Admit(key string, token uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	high, seen := g.highest[key]
	if seen && token < high {
		return &StaleError{Key: key, Token: token, Highest: high}
	}
	if seen && token == high {
		return nil
	}
	g.highest[key] = token
	if g.path == "" {
		return nil
	}
	if err := g.persist(); err != nil {
		// Keep the raise in memory: refusing lower tokens stays safe.
		return fmt.Errorf("fence: token not admitted: %w", err)
	}
	return nil
}

// Do admits token for key and runs fn, holding key's turn: no other Do
// for key runs concurrently, so a write with a lower token can neither
// overlap fn nor land after it. fn's error is returned.
func (g *Guard) Do(key string, token uint64, fn func() error) error {
	turn := g.turn(key)
	turn.Lock()
	defer turn.Unlock()
	if err := g.Admit(key, token); err != nil {
		return err
	}
	return fn()
}

// Highest returns the highest token admitted for key, and whether any was.
func (g *Guard) Highest(key string) (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.highest[key]
	return t, ok
}

func (g *Guard) turn(key string) *sync.Mutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.turns[key]
	if t == nil {
		t = new(sync.Mutex)
		g.turns[key] = t
	}
	return t
}

// persist writes the whole table atomically. Callers hold g.mu.
func (g *Guard) persist() error {
	data, err := json.Marshal(g.highest)
	if err != nil {
		return err
	}
	dir := filepath.Dir(g.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(g.path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), g.path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync() // the rename itself must survive a crash
}
