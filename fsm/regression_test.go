package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// Regression tests for defects found while writing the suite; each note
// says what went wrong before the fix.

// A holder retries a refresh: the retry (reading 3000) is applied first
// and answered "deadline 8000"; the original (reading 2000) lands after it
// and moves the deadline back to 7000, so the lock expires 1 s before a
// deadline the service already promised. docs/design.md (Expiry) says no
// landing order may make a lock expire before its lifetime has passed. Fixed:
// refresh never moves a deadline earlier.
func TestStaleRefreshMustNotShortenPromisedDeadline(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	promised := r.do(ref(3000, "a", 1, 5000))
	if promised.Outcome != Refreshed || promised.Lock.Deadline != 8000 {
		t.Fatalf("refresh = %+v", promised)
	}
	late := r.do(ref(2000, "a", 1, 5000))
	if late.Lock.Deadline < promised.Lock.Deadline {
		t.Errorf("a late refresh moved the deadline from %d back to %d", promised.Lock.Deadline, late.Lock.Deadline)
	}
	if res := r.do(tick(7000)); len(res.Freed) != 0 {
		t.Errorf("lock freed at 7000, before the promised deadline %d", promised.Lock.Deadline)
	}
}

// Persist writes locks in strictly increasing name order, so a snapshot
// that repeats a name is corrupt. readState used to accept it and index both
// copies by deadline but one by name; the stale copy's expiry then deleted
// the live lock, and the phantom entry left in byDeadline would later
// delete whatever lock held that name. Fixed: readState keeps
// the previous name and fails with ErrBadSnapshot unless l.Name > prev.
func TestRestoreRejectsRepeatedLockName(t *testing.T) {
	b := []byte(snapshotMagicV1)
	b = binary.AppendUvarint(b, 5)   // applied
	b = binary.AppendVarint(b, 1000) // leaseNow
	b = binary.AppendUvarint(b, 0)   // nodes
	b = binary.AppendUvarint(b, 2)   // locks
	b = appendLock(b, &Lock{Name: "a", Token: tok(1), Fence: 1, Deadline: 2000})
	b = appendLock(b, &Lock{Name: "a", Token: tok(2), Fence: 2, Deadline: 9000})
	b = binary.AppendUvarint(b, 0) // dedup
	m := New(Options{})
	if err := m.Restore(io.NopCloser(bytes.NewReader(b))); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("Restore of a snapshot naming %q twice: err %v, want ErrBadSnapshot", "a", err)
	}
}
