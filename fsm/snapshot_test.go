package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
)

// scriptA and scriptB build a state with every kind of content: held and
// expired locks, refreshed deadlines, nodes and remembered request ids.
func scriptA() []Command {
	return []Command{
		announce(100, "n1", "http://n1"),
		withID(acq(1000, "a", 1, 5000), "req-a"),
		withID(acq(1100, "b", 2, 800), "req-b"),
		withID(acq(1200, "a", 3, 5000), "req-busy"),
		ref(1300, "a", 1, 9000),
		acq(1400, "c", 4, 20_000),
		tick(2000), // expires b
		withID(rel(2100, "c", 4), "req-rel"),
	}
}

func scriptB() []Command {
	return []Command{
		withID(acq(2200, "a", 5, 5000), "req-busy"), // answered from the restored table
		withID(acq(2300, "b", 6, 5000), "req-b"),    // answered from the restored table
		withID(acq(2400, "b", 6, 5000), "req-b2"),
		announce(2500, "n2", "http://n2"),
		tick(10_300), // expires a
		withID(rel(10_400, "b", 6), "req-rel"),
	}
}

func TestSnapshotRestoreThenContinueEqualsUninterrupted(t *testing.T) {
	straight, cut := newRig(t), newRig(t)
	for _, c := range scriptA() {
		straight.do(c)
		cut.do(c)
	}
	data := snapshotBytes(t, cut.m)
	if !bytes.Equal(data, stateBytes(t, straight.m)) {
		t.Fatal("Persist and WriteSnapshot disagree for the same state")
	}
	restored := &rig{tb: t, m: restoreFrom(t, data), idx: cut.idx}
	if !bytes.Equal(stateBytes(t, restored.m), data) {
		t.Fatal("restored state does not write the snapshot it came from")
	}
	for i, c := range scriptB() {
		want, got := straight.do(c), restored.do(c)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("step %d after restore:\n got %+v\nwant %+v", i, got, want)
		}
	}
	ai, ad := straight.m.Digest()
	bi, bd := restored.m.Digest()
	if ai != bi || ad != bd {
		t.Errorf("digests differ: %d %x vs %d %x", ai, ad, bi, bd)
	}
	if !bytes.Equal(stateBytes(t, straight.m), stateBytes(t, restored.m)) {
		t.Error("final snapshots differ")
	}
	if !reflect.DeepEqual(restored.m.Nodes(), straight.m.Nodes()) || restored.m.AppliedIndex() != straight.m.AppliedIndex() {
		t.Error("nodes or applied index differ")
	}
}

func TestEmptySnapshotRoundTrip(t *testing.T) {
	m := New(Options{})
	data := snapshotBytes(t, m)
	if !bytes.Equal(stateBytes(t, restoreFrom(t, data)), data) {
		t.Error("empty machine does not round-trip")
	}
}

// Snapshot must freeze the state: applies after it, even to locks it
// holds, must not show up in what Persist writes later.
func TestSnapshotIsPointInTime(t *testing.T) {
	r := newRig(t)
	for _, c := range scriptA() {
		r.do(c)
	}
	want := stateBytes(t, r.m)
	snap, err := r.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range scriptB() {
		r.do(c)
	}
	for i := 0; i < 200; i++ { // enough to split b-tree nodes
		r.do(acq(20_000, fmt.Sprintf("late-%03d", i), 9, 5000))
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Error("Persist after further applies wrote the later state")
	}
}

// A snapshot shares the dedup queue instead of copying it under the lock
// (issue 8: a digest copied the whole table under the write lock): ids
// added, expired and compacted away after the snapshot must not change
// what it persists.
func TestSnapshotSharesDedupPointInTime(t *testing.T) {
	r := newRig(t)
	for i := 0; i < 1500; i++ {
		r.do(withID(acq(int64(1000+i), fmt.Sprintf("d-%04d", i), 1, 1), fmt.Sprintf("rid-%04d-0123456789", i)))
	}
	want := stateBytes(t, r.m)
	snap, err := r.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Expire every id and compact the queue, then add new ones.
	r.advanceTo(1000 + 1500 + DedupTTL + 1)
	for i := 0; i < 1500; i++ {
		r.do(withID(acq(r.m.Now(), fmt.Sprintf("e-%04d", i), 2, 1), fmt.Sprintf("rid-e-%04d-0123456789", i)))
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Error("a snapshot's dedup entries changed after it was taken")
	}
}

// Persist runs on Raft's snapshot goroutine while Apply goes on; run it
// under -race to check the copy-on-write freeze.
func TestPersistConcurrentWithApply(t *testing.T) {
	r := newRig(t)
	for i := 0; i < 2000; i++ {
		r.do(acq(1000, fmt.Sprintf("k-%04d", i), 1, 60_000))
	}
	snap, _ := r.m.Snapshot()
	want := stateBytes(t, r.m)
	var wg sync.WaitGroup
	var sink memSink
	var perr error
	wg.Add(1)
	go func() { defer wg.Done(); perr = snap.Persist(&sink) }()
	for i := 0; i < 2000; i += 2 {
		name := fmt.Sprintf("k-%04d", i)
		r.do(ref(2000, name, 1, 60_000))
		r.do(rel(2000, fmt.Sprintf("k-%04d", i+1), 1))
		r.do(acq(2000, name+"-new", 2, 60_000))
	}
	wg.Wait()
	if perr != nil || !bytes.Equal(sink.Bytes(), want) {
		t.Errorf("concurrent Persist: err %v, equal %v", perr, bytes.Equal(sink.Bytes(), want))
	}
}

type failSink struct{ memSink }

func (*failSink) Write([]byte) (int, error) { return 0, errBoom }

func TestPersistWriteErrorCancelsSink(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	snap, _ := r.m.Snapshot()
	var sink failSink
	if err := snap.Persist(&sink); !errors.Is(err, errBoom) {
		t.Errorf("Persist error %v, want the sink's", err)
	}
	if !sink.cancelled || sink.closed {
		t.Errorf("sink cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
}

type failCancelSink struct{ failSink }

var errCancel = errors.New("cancel failed")

func (s *failCancelSink) Cancel() error { s.cancelled = true; return errCancel }

// A Cancel that fails (a full disk cannot flush) is reported with the
// write's error, not dropped.
func TestPersistReportsCancelError(t *testing.T) {
	r := newRig(t)
	r.do(acq(1000, "a", 1, 5000))
	snap, _ := r.m.Snapshot()
	var sink failCancelSink
	err := snap.Persist(&sink)
	if !errors.Is(err, errBoom) || !errors.Is(err, errCancel) || !sink.cancelled {
		t.Errorf("Persist error %v (cancelled %v), want both the write's and the cancel's", err, sink.cancelled)
	}
}

// corruptions returns damaged copies of a good snapshot: every truncation,
// a trailing byte, and a bad header.
func corruptions(good []byte) map[string][]byte {
	out := map[string][]byte{
		"empty":       {},
		"bad magic":   append([]byte("DDSNAP9\n"), good[len(snapshotMagic):]...),
		"trailing":    append(append([]byte(nil), good...), 0),
		"huge counts": append([]byte(snapshotMagic), 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for n := 0; n < len(good); n++ {
		out[fmt.Sprintf("cut at %d", n)] = good[:n]
	}
	return out
}

func TestRestoreCorruptSnapshotLeavesStateUnchanged(t *testing.T) {
	src := newRig(t)
	for _, c := range scriptA() {
		src.do(c)
	}
	good := snapshotBytes(t, src.m)

	dst := newRig(t)
	dst.do(acq(50, "mine", 9, 1<<40))
	dst.do(withID(acq(60, "x", 1, 1<<40), "req-dst"))
	before := stateBytes(t, dst.m)
	for name, data := range corruptions(good) {
		rc := &closeTracker{Reader: bytes.NewReader(data)}
		err := dst.m.Restore(rc)
		if !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore error %v, want ErrBadSnapshot", name, err)
		}
		if !rc.closed {
			t.Errorf("%s: Restore did not close its reader", name)
		}
	}
	rc := &closeTracker{Reader: &failReader{data: good[:20]}}
	if err := dst.m.Restore(rc); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("read error: Restore error %v, want ErrBadSnapshot", err)
	}
	if !bytes.Equal(stateBytes(t, dst.m), before) {
		t.Fatal("a failed Restore changed the state")
	}
	// The machine still works, and a good snapshot replaces it whole.
	if got := dst.do(withID(acq(70, "x", 2, 1<<40), "req-dst")); !got.Duplicate {
		t.Error("dedup table lost by a failed Restore")
	}
	if err := dst.m.Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatal(err)
	}
	if _, ok := dst.m.Get("mine"); ok || !bytes.Equal(stateBytes(t, dst.m), good) {
		t.Error("Restore did not replace the whole state")
	}
}
