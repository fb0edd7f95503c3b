package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/doubledutch/doubledutch/fsm"
)

// Backup and restore.
//
// A backup is the state machine's snapshot form (fsm's format, the same
// bytes Raft snapshots hold) followed by a trailer: backupMagic and the
// SHA-256 of the snapshot bytes. The file checks itself, so a truncated
// download or a flipped bit is refused at restore time.
//
// Restore seeds an empty data directory with a Raft snapshot of that
// state, as if the node had installed it from a leader, at a log index
// RestoreGap above the index the backup was taken at. Fencing tokens are
// the Raft index of the granting entry, so every grant after the restore
// has a larger token than every grant in the backup and, as long as the
// lost cluster applied fewer than RestoreGap entries after the backup was
// taken, than every grant it ever made. The lease clock of the restored
// state is the backup's: a new leader starts its clock from the applied
// clock (leader.go), so a restored lock has exactly the time it had left
// when the backup was taken, never less.

// backupMagic introduces the trailer of a backup file.
const backupMagic = "DDBACKUP-SHA256\n"

// RestoreGap is how far above the backup's index a restored cluster's log
// begins (2^32 entries: more than a day at 40,000 entries a second).
const RestoreGap uint64 = 1 << 32

// restoreTerm is the Raft term of a restored node's snapshot and its
// starting term: a new cluster, whose first election begins term 2.
const restoreTerm = 1

// ErrBadBackup marks a backup file that is damaged or not a backup.
var ErrBadBackup = errors.New("not a valid backup (damaged, truncated, or another kind of file)")

// ErrExistingState means a restore was pointed at a data directory that
// already holds Raft state: restore only seeds brand-new nodes.
var ErrExistingState = errors.New("the data directory already holds Raft state; restore only into an empty one")

// Backup writes a consistent backup to w: a linearizable read (only the
// leader answers, after confirming it leads and has applied everything
// committed when the call began) followed by a point-in-time copy of the
// state. It returns the applied index the backup reflects.
func (n *Node) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if err := n.linearize(ctx); err != nil {
		return 0, err
	}
	idx := n.fsm.AppliedIndex()
	h := sha256.New()
	if err := n.fsm.WriteSnapshot(io.MultiWriter(w, h)); err != nil {
		return 0, fmt.Errorf("cluster: write backup: %w", err)
	}
	if _, err := io.WriteString(w, backupMagic); err != nil {
		return 0, err
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return 0, err
	}
	n.log.Info("backup written", "applied_index", idx)
	return idx, nil
}

// RestoreInfo describes a finished restore.
type RestoreInfo struct {
	// BackupIndex is the applied index the backup was taken at.
	BackupIndex uint64
	// StartIndex is the restored node's log position: new entries, and so
	// new fencing tokens, come after it.
	StartIndex uint64
	// Locks is the number of locks restored.
	Locks int
	// Voters is the configuration the restored node starts with.
	Voters []Voter
}

// Restore seeds cfg.DataDir, which must hold no Raft state, with the
// backup read from r. The node then starts normally with cfg. The voter
// list is cfg.Voters (restore every listed node from the same file), or
// this node alone when empty (other nodes then join it with --join).
func Restore(cfg Config, r io.Reader) (RestoreInfo, error) {
	cfg.setDefaults()
	data, err := readBackup(r)
	if err != nil {
		return RestoreInfo{}, err
	}
	m := fsm.New(fsm.Options{})
	if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		return RestoreInfo{}, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	info := RestoreInfo{BackupIndex: m.AppliedIndex(), Locks: m.Len(), Voters: cfg.Voters}
	if info.BackupIndex == 0 {
		return info, fmt.Errorf("%w: it holds no applied state", ErrBadBackup)
	}
	info.StartIndex = info.BackupIndex + RestoreGap
	if len(info.Voters) == 0 {
		addr := cfg.RaftAdvertise
		if addr == "" {
			addr = cfg.RaftBind
		}
		info.Voters = []Voter{{ID: cfg.NodeID, Address: addr}}
	}
	if err := seedDataDir(cfg, info, data); err != nil {
		return info, err
	}
	return info, nil
}

// CheckBackup verifies a backup file's checksum and that its state
// decodes, without writing anything.
func CheckBackup(path string) (RestoreInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return RestoreInfo{}, err
	}
	defer f.Close()
	data, err := readBackup(f)
	if err != nil {
		return RestoreInfo{}, err
	}
	m := fsm.New(fsm.Options{})
	if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		return RestoreInfo{}, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	return RestoreInfo{BackupIndex: m.AppliedIndex(), Locks: m.Len()}, nil
}

func readBackup(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read backup: %w", err)
	}
	tail := len(backupMagic) + sha256.Size
	if len(data) < tail || string(data[len(data)-tail:len(data)-sha256.Size]) != backupMagic {
		return nil, fmt.Errorf("%w: no checksum trailer", ErrBadBackup)
	}
	body, sum := data[:len(data)-tail], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadBackup)
	}
	return body, nil
}

// seedDataDir writes the snapshot into an empty data directory.
func seedDataDir(cfg Config, info RestoreInfo, data []byte) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cluster: data directory: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("cluster: open raft.db: %w", err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("cluster: snapshot store: %w", err)
	}
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return fmt.Errorf("cluster: inspect state: %w", err)
	}
	if has {
		return ErrExistingState
	}
	var conf raft.Configuration
	for _, v := range info.Voters {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(v.ID), Address: raft.ServerAddress(v.Address), Suffrage: raft.Voter})
	}
	// The in-memory transport only encodes the legacy peer list.
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	sink, err := snaps.Create(1, info.StartIndex, restoreTerm, conf, info.StartIndex, trans)
	if err != nil {
		return fmt.Errorf("cluster: create snapshot: %w", err)
	}
	if _, err := sink.Write(data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	// Raft's current term, where Raft keeps it, equal to the snapshot's: a
	// node whose stable store knows no term although a snapshot exists
	// looks like one that lost its votes, and starts guarded.
	if err := store.SetUint64([]byte("CurrentTerm"), restoreTerm); err != nil {
		return fmt.Errorf("cluster: record the term: %w", err)
	}
	cfg.Logger.Named("cluster").Info("restored backup into data directory", "dir", cfg.DataDir,
		"backup_index", info.BackupIndex, "start_index", info.StartIndex, "locks", info.Locks, "voters", len(info.Voters))
	return nil
}
