package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// ErrDataDirDamaged means the node's data directory cannot be used: a
// file cannot be read, or what is left cannot rebuild a consistent state.
// The node does not start; the error names the file and the recovery.
var ErrDataDirDamaged = errors.New("data directory damaged")

// guardFile marks a data directory whose node forgot Raft state it may
// have acknowledged; it lives until the vote guard lifts, so a restart in
// the middle of catching up keeps the guard.
const guardFile = "vote-guard"

// recovery is what an operator does with a damaged data directory.
const recovery = "remove the node's data directory and let it rejoin as a fresh member"

// damagedError is ErrDataDirDamaged with the file and what was wrong.
type damagedError struct {
	file string
	what string
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("cluster: %s: %s; %s", e.file, e.what, recovery)
}

func (e *damagedError) Unwrap() error { return ErrDataDirDamaged }

// openBoltStore opens raft.db, turning bbolt's panics on a damaged file
// (for example "invalid freelist page") into ErrDataDirDamaged.
// A page outside a truncated file faults: with SetPanicOnFault that is a
// panic in this goroutine, which recover turns into the error.
func openBoltStore(path string, noSync bool) (store *raftboltdb.BoltStore, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			store, err = nil, &damagedError{file: path, what: fmt.Sprintf("cannot be read (%v)", p)}
		}
	}()
	store, err = raftboltdb.New(raftboltdb.Options{Path: path, NoSync: noSync})
	if err != nil {
		return nil, &damagedError{file: path, what: fmt.Sprintf("cannot be opened (%v)", err)}
	}
	return store, nil
}

// startState is what the start-up check found.
type startState struct {
	existing bool   // any Raft state at all
	guard    string // why the node starts guarded, "" when it need not
}

// inspectStorage checks, before Raft starts, that what the data directory
// holds is consistent (docs/design.md, Storage faults):
//   - a current term is recorded when log entries or snapshots exist;
//   - the recorded term is not behind the newest snapshot's term;
//   - the log continues from a snapshot that can be read (else Raft would
//     panic with "log not found" while replaying it).
//
// Forgotten votes or log entries make the node start guarded; state that
// cannot be rebuilt is ErrDataDirDamaged.
func (n *Node) inspectStorage(store *raftboltdb.BoltStore, snaps raft.SnapshotStore) (st startState, err error) {
	dbPath := filepath.Join(n.cfg.DataDir, "raft.db")
	// A truncated raft.db can leave pages outside the file: reading them
	// faults. Here, in this goroutine, that is an error, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			st, err = startState{}, &damagedError{file: dbPath, what: fmt.Sprintf("cannot be read (%v)", p)}
		}
	}()
	term, err := store.GetUint64([]byte("CurrentTerm"))
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return startState{}, &damagedError{file: dbPath, what: fmt.Sprintf("current term cannot be read (%v)", err)}
	}
	first, ferr := store.FirstIndex()
	last, lerr := store.LastIndex()
	if err := errors.Join(ferr, lerr); err != nil {
		return startState{}, &damagedError{file: dbPath, what: fmt.Sprintf("log cannot be read (%v)", err)}
	}
	metas, err := snaps.List()
	if err != nil {
		return startState{}, &damagedError{file: filepath.Join(n.cfg.DataDir, "snapshots"), what: fmt.Sprintf("cannot be listed (%v)", err)}
	}
	from, err := n.checkLogContinues(snaps, metas, first, last)
	if err != nil {
		return startState{}, err
	}
	// Raft replays the entries after the snapshot it restores. Entries
	// before it may have gaps (a snapshot installed over a log that kept
	// its bootstrap entry) and are never read.
	if err := readLog(store, max(first, from+1), last); err != nil {
		return startState{}, &damagedError{file: dbPath, what: err.Error()}
	}
	st = startState{existing: term > 0 || last > 0 || len(metas) > 0}
	switch {
	case !st.existing:
		st.guard = "started with an empty data directory"
	case term == 0:
		st.guard = "raft.db records no current term although log entries or snapshots exist: its votes and log tail were lost"
	case len(metas) > 0 && term < metas[0].Term:
		st.guard = fmt.Sprintf("raft.db's term %d is behind the newest snapshot's term %d: raft.db is older than the snapshots", term, metas[0].Term)
	}
	if _, err := os.Stat(filepath.Join(n.cfg.DataDir, guardFile)); err == nil && st.guard == "" {
		st.guard = "an earlier start forgot Raft state and had not caught up"
	}
	return st, nil
}

// readLog reads entries first..last, as Raft will when it starts: a
// damaged page shows here, where the caller can report it.
func readLog(store *raftboltdb.BoltStore, first, last uint64) error {
	if last == 0 || first > last {
		return nil
	}
	var entry raft.Log
	for i := first; i <= last; i++ {
		if err := store.GetLog(i, &entry); err != nil {
			return fmt.Errorf("log entry %d of %d..%d cannot be read (%w)", i, first, last, err)
		}
	}
	return nil
}

// checkLogContinues finds the newest snapshot that reads back with a good
// checksum, as Raft will when it starts, and checks that the log continues
// from it. Unreadable newer snapshots are logged and skipped, as Raft does.
func (n *Node) checkLogContinues(snaps raft.SnapshotStore, metas []*raft.SnapshotMeta, first, last uint64) (from uint64, err error) {
	var usable *raft.SnapshotMeta
	var bad []string
	for _, m := range metas {
		_, rc, err := snaps.Open(m.ID)
		if err != nil {
			n.log.Warn("snapshot cannot be read; trying an older one", "snapshot", m.ID, "error", err)
			bad = append(bad, fmt.Sprintf("snapshot %s (%v)", m.ID, err))
			continue
		}
		_ = rc.Close()
		usable = m
		break
	}
	if usable != nil {
		from = usable.Index
	}
	// The log must continue from the snapshot: entry from+1 must exist
	// whenever the log holds anything after it.
	if last > from && first > from+1 {
		what := fmt.Sprintf("the log starts at index %d, but the newest readable snapshot ends at index %d, so entries in between are lost", first, from)
		if len(bad) > 0 {
			what += "; unreadable: " + strings.Join(bad, ", ")
		}
		return 0, &damagedError{file: filepath.Join(n.cfg.DataDir, "snapshots"), what: what}
	}
	if usable == nil && len(metas) > 0 {
		// Raft refuses to start when snapshots exist and none restores.
		return 0, &damagedError{file: filepath.Join(n.cfg.DataDir, "snapshots"), what: "no snapshot can be read: " + strings.Join(bad, ", ")}
	}
	return from, nil
}

// writeGuardFile records that this node starts guarded, durably, before
// Raft can accept anything.
func (n *Node) writeGuardFile(reason string) error {
	path := filepath.Join(n.cfg.DataDir, guardFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cluster: record the vote guard: %w", err)
	}
	_, werr := f.WriteString(reason + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("cluster: record the vote guard: %w", err)
	}
	return syncDir(n.cfg.DataDir)
}

// clearGuardFile removes the guard record once the guard has lifted. If
// the removal fails the node is merely guarded again after a restart.
func (n *Node) clearGuardFile() {
	err := os.Remove(filepath.Join(n.cfg.DataDir, guardFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("could not remove the vote-guard record", "error", err)
	}
}

// removeTempSnapshots deletes snapshot directories that an earlier run
// left half-written (a failed or interrupted snapshot); Raft never reads
// them and never removes them itself.
func (n *Node) removeTempSnapshots() {
	dirs, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, "snapshots", "*.tmp"))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			n.log.Warn("could not remove an unfinished snapshot", "dir", d, "error", err)
			continue
		}
		n.log.Info("removed an unfinished snapshot left by an earlier run", "dir", filepath.Base(d))
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cleanSnapshotStore removes what a failed snapshot leaves behind: Raft's
// Cancel leaves its directory when flushing fails (a full disk), and its
// Create leaves one when writing the metadata fails.
type cleanSnapshotStore struct {
	*raft.FileSnapshotStore
	dir string
	log hclog.Logger
}

// Create starts a snapshot, removing the directory of one that failed to start.
func (s *cleanSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, c raft.Configuration, ci uint64, t raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, c, ci, t)
	if err != nil {
		// Raft names the directory term-index-millis.tmp.
		left, _ := filepath.Glob(filepath.Join(s.dir, fmt.Sprintf("%d-%d-*.tmp", term, index)))
		for _, d := range left {
			_ = os.RemoveAll(d)
		}
		return nil, err
	}
	return &cleanSink{SnapshotSink: sink, dir: filepath.Join(s.dir, sink.ID()+".tmp"), log: s.log}, nil
}

// cleanSink removes its directory when Raft's Cancel could not.
type cleanSink struct {
	raft.SnapshotSink
	dir string
	log hclog.Logger
}

// Cancel abandons the snapshot and makes sure its directory is gone.
func (s *cleanSink) Cancel() error {
	err := s.SnapshotSink.Cancel()
	if err != nil {
		if rerr := os.RemoveAll(s.dir); rerr != nil {
			s.log.Warn("could not remove a failed snapshot", "dir", s.dir, "error", rerr)
			return errors.Join(err, rerr)
		}
	}
	return err
}

// Snapshot takes a Raft snapshot now and compacts the log down to the
// configured trailing entries (tests; operators before a backup).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }
