package fsm

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

// snapshotMagic starts every snapshot; the trailing digit is the format
// version. Version 2 adds the last fence and stores dedup entries in their
// compact form; version 1 snapshots are still read.
const (
	snapshotMagic   = "DDSNAP2\n"
	snapshotMagicV1 = "DDSNAP1\n"
)

// ErrBadSnapshot marks a snapshot this version cannot read.
var ErrBadSnapshot = errors.New("fsm: unreadable snapshot")

// frozen is a point-in-time view of the whole state. The lock tree is a
// copy-on-write clone and dedup entries are immutable, so building one is
// cheap and Persist can run while Apply goes on.
type frozen struct {
	byName    *btree.BTreeG[*Lock]
	leaseNow  int64
	applied   uint64
	lastFence uint64
	nodes     []NodeURL
	dedup     []*dedupEntry
}

func (m *Machine) freeze() *frozen {
	return &frozen{
		byName:    m.byName.Clone(),
		leaseNow:  m.leaseNow,
		applied:   m.applied,
		lastFence: m.lastFence,
		nodes:     sortedNodes(m.nodes),
		dedup:     m.dedup.live(),
	}
}

// Persist writes the snapshot: the same state always gives the same bytes.
func (f *frozen) Persist(sink raft.SnapshotSink) error {
	if err := f.writeTo(sink); err != nil {
		// A failed Cancel (a full disk cannot flush) may leave a partial
		// snapshot behind: report it with the cause, so Raft logs both.
		if cerr := sink.Cancel(); cerr != nil {
			return errors.Join(err, fmt.Errorf("fsm: cancel the failed snapshot: %w", cerr))
		}
		return err
	}
	return sink.Close()
}

// Release has nothing to free: the clone is collected with the snapshot.
func (f *frozen) Release() {}

func (f *frozen) writeTo(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	buf := make([]byte, 0, 256)
	buf = append(buf, snapshotMagic...)
	buf = binary.AppendUvarint(buf, f.applied)
	buf = binary.AppendVarint(buf, f.leaseNow)
	buf = binary.AppendUvarint(buf, f.lastFence)
	buf = binary.AppendUvarint(buf, uint64(len(f.nodes)))
	for _, n := range f.nodes {
		buf = appendString(buf, n.ID)
		buf = appendString(buf, n.APIURL)
	}
	buf = binary.AppendUvarint(buf, uint64(f.byName.Len()))
	var err error
	f.byName.Ascend(func(l *Lock) bool {
		buf = appendLock(buf, l)
		if len(buf) > 32<<10 {
			_, err = bw.Write(buf)
			buf = buf[:0]
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	buf = binary.AppendUvarint(buf, uint64(len(f.dedup)))
	for _, e := range f.dedup {
		buf = appendString(buf, e.key)
		buf = binary.AppendVarint(buf, e.expires)
		buf = append(buf, byte(e.outcome))
		buf = binary.AppendUvarint(buf, e.index)
		buf = binary.AppendUvarint(buf, e.fence)
		if len(buf) > 32<<10 {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

func appendLock(b []byte, l *Lock) []byte {
	b = appendString(b, l.Name)
	b = append(b, l.Token[:]...)
	b = appendString(b, l.Owner)
	b = binary.AppendUvarint(b, l.Fence)
	b = binary.AppendVarint(b, l.GrantedAt)
	b = binary.AppendVarint(b, l.Lifetime)
	return binary.AppendVarint(b, l.Deadline)
}

func (r *reader) lock() *Lock {
	return &Lock{
		Name:      r.string(),
		Token:     r.token(),
		Owner:     r.string(),
		Fence:     r.uvarint(),
		GrantedAt: r.varint(),
		Lifetime:  r.varint(),
		Deadline:  r.varint(),
	}
}

// dedupEntry reads one remembered id; version 1 stored the whole first
// Result, of which only the outcome, index and fence are kept.
func (r *reader) dedupEntry(v1 bool) *dedupEntry {
	e := &dedupEntry{key: r.string(), expires: r.varint(), outcome: Outcome(r.byte()), index: r.uvarint()}
	if v1 {
		_ = r.varint() // Now
		e.fence = r.lock().Fence
	} else {
		e.fence = r.uvarint()
	}
	return e
}

// state is a decoded snapshot, ready to replace a Machine's state.
type state struct {
	byName, byDeadline *btree.BTreeG[*Lock]
	leaseNow           int64
	applied, lastFence uint64
	nodes              map[string]string
	dedup              dedupTable
}

func readState(rd io.Reader) (*state, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if len(data) < len(snapshotMagic) {
		return nil, fmt.Errorf("%w: bad header", ErrBadSnapshot)
	}
	v1 := string(data[:len(snapshotMagicV1)]) == snapshotMagicV1
	if !v1 && string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad header", ErrBadSnapshot)
	}
	r := reader{buf: data[len(snapshotMagic):]}
	st := &state{
		byName:     btree.NewG(btreeDegree, lessByName),
		byDeadline: btree.NewG(btreeDegree, lessByDeadline),
		nodes:      map[string]string{},
		dedup:      newDedupTable(),
	}
	st.applied = r.uvarint()
	st.leaseNow = r.varint()
	if v1 {
		// Version 1 fenced every grant with its index, never above applied.
		st.lastFence = st.applied
	} else {
		st.lastFence = r.uvarint()
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		id := r.string()
		st.nodes[id] = r.string()
	}
	r.locksInto(st)
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		if e := r.dedupEntry(v1); r.err == nil {
			st.dedup.put(e)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, r.err)
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.buf))
	}
	return st, nil
}

// locksInto reads the snapshot's locks into both of st's indexes.
func (r *reader) locksInto(st *state) {
	var prev *Lock
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		l := r.lock()
		if prev != nil && l.Name <= prev.Name {
			// Persist writes names strictly ascending; anything else
			// would leave the two indexes disagreeing.
			r.fail(errors.New("lock names out of order"))
			return
		}
		prev = l
		st.byName.ReplaceOrInsert(l)
		st.byDeadline.ReplaceOrInsert(l)
	}
}

// WriteSnapshot writes the current state in snapshot form. Two machines
// that applied the same log write the same bytes.
func (m *Machine) WriteSnapshot(w io.Writer) error {
	m.mu.Lock()
	f := m.freeze()
	m.mu.Unlock()
	return f.writeTo(w)
}

// Digest is a SHA-256 of the snapshot form: equal digests at equal applied
// indexes mean equal state.
func (m *Machine) Digest() (applied uint64, digest [32]byte) {
	m.mu.Lock()
	f := m.freeze()
	m.mu.Unlock()
	h := sha256.New()
	if err := f.writeTo(h); err != nil {
		panic(err) // a hash never fails to write
	}
	copy(digest[:], h.Sum(nil))
	return f.applied, digest
}
