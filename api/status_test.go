package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// fill takes n locks directly on the fake cluster.
func (h *harness) fill(n int) {
	h.t.Helper()
	for i := 0; i < n; i++ {
		res, err := h.f.Acquire(context.Background(), cluster.AcquireRequest{Name: fmt.Sprintf("lock-%06d", i), Lifetime: time.Hour})
		if err != nil || res.Outcome != fsm.Granted {
			h.t.Fatalf("fill: %v %v", res.Outcome, err)
		}
	}
}

// chunkRecorder records the largest single Write of an answer.
type chunkRecorder struct {
	*httptest.ResponseRecorder
	largest int
}

func (c *chunkRecorder) Write(b []byte) (int, error) {
	c.largest = max(c.largest, len(b))
	return c.ResponseRecorder.Write(b)
}

// TestStatusStreams: /status leaves in pieces of bounded size however
// many locks there are (issue 8 item 9: it used to build the whole answer
// in memory, 14 MB for 50,000 locks, per concurrent caller), and keeps the
// original's shape exactly.
func TestStatusStreams(t *testing.T) {
	h := newHarness(t)
	const n = 2*statusPageSize + 500
	h.fill(n)
	rec := &chunkRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status?auth="+testKey, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	body := rec.Body.Bytes()
	if rec.largest > 64<<10 || len(body) < 4*rec.largest {
		t.Fatalf("the %d-byte answer was written in a piece of %d bytes", len(body), rec.largest)
	}
	var out statusResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("answer does not decode: %v", err)
	}
	if !bytes.HasPrefix(body, []byte(`{"servername":"DoubleDutch"`)) || !bytes.HasSuffix(body, []byte("]}\n")) {
		t.Fatalf("answer shape: %.60s ... %q", body, body[len(body)-10:])
	}
	if out.Status != "ok" || len(out.Locks) != n {
		t.Fatalf("status %q with %d locks, want %d", out.Status, len(out.Locks), n)
	}
	for i, l := range out.Locks {
		if l.LockName != fmt.Sprintf("lock-%06d", i) || l.SessionToken != "" || l.FencingToken == 0 || l.Remaining <= 0 {
			t.Fatalf("lock %d: %+v", i, l)
		}
	}
}

// BenchmarkStatus50k measures one /status call over 50,000 locks (about
// 3.9 MB of JSON). B/op is what the handler allocates for it: before
// streaming the answer was built whole (bytes of the full encoding plus
// the slice of locks); now it is garbage of one page at a time.
func BenchmarkStatus50k(b *testing.B) {
	h := newHarness(b)
	h.s.log = hclog.NewNullLogger()
	h.fill(50_000)
	b.ReportAllocs()
	for b.Loop() {
		w := &discardWriter{header: http.Header{}}
		h.s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/status?auth="+testKey, nil))
		if w.status != http.StatusOK || w.n < 50_000*60 {
			b.Fatal(w.status, w.n)
		}
	}
}

// discardWriter counts an answer's bytes without keeping them, so that a
// benchmark measures the handler's memory, not the recorder's.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discardWriter) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.n += len(b)
	return len(b), nil
}
