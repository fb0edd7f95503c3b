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
// version.
const snapshotMagic = "DDSNAP1\n"

// ErrBadSnapshot marks a snapshot this version cannot read.
var ErrBadSnapshot = errors.New("fsm: unreadable snapshot")

// frozen is a point-in-time view of the whole state. The lock tree is a
// copy-on-write clone and dedup entries are immutable, so building one is
// cheap and Persist can run while Apply goes on.
type frozen struct {
	byName   *btree.BTreeG[*Lock]
	leaseNow int64
	applied  uint64
	nodes    []NodeURL
	dedup    []*dedupEntry
}

func (m *Machine) freeze() *frozen {
	return &frozen{
		byName:   m.byName.Clone(),
		leaseNow: m.leaseNow,
		applied:  m.applied,
		nodes:    sortedNodes(m.nodes),
		dedup:    m.dedup.live(),
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
		buf = appendString(buf, e.id)
		buf = binary.AppendVarint(buf, e.expires)
		buf = appendResult(buf, e.result)
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

func appendResult(b []byte, res Result) []byte {
	b = append(b, byte(res.Outcome))
	b = binary.AppendUvarint(b, res.Index)
	b = binary.AppendVarint(b, res.Now)
	return appendLock(b, &res.Lock)
}

func (r *reader) result() Result {
	return Result{Outcome: Outcome(r.byte()), Index: r.uvarint(), Now: r.varint(), Lock: *r.lock()}
}

// state is a decoded snapshot, ready to replace a Machine's state.
type state struct {
	byName, byDeadline *btree.BTreeG[*Lock]
	leaseNow           int64
	applied            uint64
	nodes              map[string]string
	dedup              dedupTable
}

func readState(rd io.Reader) (*state, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if len(data) < len(snapshotMagic) || string(data[:len(snapshotMagic)]) != snapshotMagic {
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
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		id := r.string()
		st.nodes[id] = r.string()
	}
	var prev *Lock
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		l := r.lock()
		if prev != nil && l.Name <= prev.Name {
			// Persist writes names strictly ascending; anything else
			// would leave the two indexes disagreeing.
			r.fail(errors.New("lock names out of order"))
			break
		}
		prev = l
		st.byName.ReplaceOrInsert(l)
		st.byDeadline.ReplaceOrInsert(l)
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		id := r.string()
		expires := r.varint()
		st.dedup.put(id, expires, r.result())
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, r.err)
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.buf))
	}
	return st, nil
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
