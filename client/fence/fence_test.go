package fence

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
)

// Writers with random tokens race through Do: the writes that land carry
// non-decreasing tokens, and every refused token was below one admitted
// before it.
func TestGuardRefusesStaleTokensUnderConcurrency(t *testing.T) {
	g := New()
	var mu sync.Mutex
	var landed []uint64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				tok := rand.Uint64N(1000)
				err := g.Do("db", tok, func() error {
					mu.Lock()
					landed = append(landed, tok)
					mu.Unlock()
					return nil
				})
				var stale *StaleError
				if err != nil && (!errors.As(err, &stale) || stale.Token != tok || stale.Highest <= tok) {
					t.Errorf("refusal of %d: %v", tok, err)
				}
			}
		}()
	}
	wg.Wait()
	for i := 1; i < len(landed); i++ {
		if landed[i] < landed[i-1] {
			t.Fatalf("write with token %d landed after one with %d", landed[i], landed[i-1])
		}
	}
	high, _ := g.Highest("db")
	if len(landed) == 0 || landed[len(landed)-1] != high {
		t.Fatalf("highest %d, last landed %v", high, landed[len(landed)-1:])
	}
	if high > 0 && !errors.Is(g.Admit("db", high-1), ErrStale) {
		t.Fatal("a token below the highest was admitted")
	}
	if err := g.Admit("db", high); err != nil {
		t.Fatalf("the holder's own token again: %v", err)
	}
	if err := g.Admit("other", 1); err != nil {
		t.Fatalf("keys are independent: %v", err)
	}
}

// The file-backed guard remembers across a reopen (a restart).
func TestFileGuardSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fences.json")
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Admit("report", 41); err != nil {
		t.Fatal(err)
	}
	if err := g.Admit("report", 42); err != nil {
		t.Fatal(err)
	}
	g2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := g2.Highest("report"); !ok || h != 42 {
		t.Fatalf("after reopen: %d %v, want 42", h, ok)
	}
	if !errors.Is(g2.Admit("report", 41), ErrStale) {
		t.Fatal("a stale token was admitted after a reopen")
	}
}

// A file that cannot be written refuses the token (and stays safe).
func TestFileGuardRefusesWhenItCannotPersist(t *testing.T) {
	g, err := Open(filepath.Join(t.TempDir(), "missing-dir", "fences.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Admit("k", 5); err == nil {
		t.Fatal("admitted a token it could not persist")
	}
	if !errors.Is(g.Admit("k", 4), ErrStale) {
		t.Fatal("a token below a refused-to-persist one was admitted")
	}
}
