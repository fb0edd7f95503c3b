package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/internal/testlog"
)

const (
	testKey      = "s3cret-key"
	testAdminKey = "adm1n-key"
)

// harness is a Server on a fake cluster.
type harness struct {
	t testing.TB
	f *fakeCluster
	s *Server
}

func testLogger(t testing.TB) hclog.Logger {
	return testlog.New(t, "api", hclog.Debug)
}

func newHarness(t testing.TB, mods ...func(*Config)) *harness {
	t.Helper()
	f := newFake()
	cfg := Config{APIKey: testKey, AdminKey: testAdminKey}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(cfg, f, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(); f.close() })
	return &harness{t: t, f: f, s: s}
}

// req is one request to send.
type req struct {
	method, target, body string
	bearer               string // "" sends no Authorization header
	header               map[string]string
	ctx                  context.Context
}

// do sends r straight to the handler and returns the recorded answer.
func (h *harness) do(r req) *httptest.ResponseRecorder {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	u, err := url.ParseRequestURI(r.target)
	if err != nil {
		h.t.Fatalf("bad target %q: %v", r.target, err)
	}
	hr := httptest.NewRequest(r.method, "http://n1.test:8001/", body)
	hr.URL = u
	hr.RequestURI = r.target
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	rec := httptest.NewRecorder()
	h.s.ServeHTTP(rec, hr)
	return rec
}

func (h *harness) get(target string) *httptest.ResponseRecorder {
	return h.do(req{method: http.MethodGet, target: target, bearer: testKey})
}

// admin sends a request with the admin key.
func (h *harness) admin(method, target, body string) *httptest.ResponseRecorder {
	return h.do(req{method: method, target: target, body: body, bearer: testAdminKey})
}

// v1 sends a v1 request with the key.
func (h *harness) v1(method, target, body string) *httptest.ResponseRecorder {
	return h.do(req{method: method, target: target, body: body, bearer: testKey})
}

// jsonOf decodes a JSON answer, failing the test if it is not JSON.
func jsonOf(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %q", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %q", err, rec.Body.String())
	}
	return m
}

// errCode is the "error"."code" of an error answer, "" if none.
func errCode(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	e, _ := jsonOf(t, rec)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// wantError checks an error answer's status and code.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	m := jsonOf(t, rec)
	e, ok := m["error"].(map[string]any)
	if !ok || e["code"] != code || e["message"] == "" {
		t.Fatalf("error %v, want code %q with a message", m["error"], code)
	}
	return m
}

// wantOK checks a 200 JSON answer and returns it.
func wantOK(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	return jsonOf(t, rec)
}

// eventually waits for cond with a deadline: tests never sleep blindly.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// async runs fn in a goroutine and returns a channel with its answer.
func async(fn func() *httptest.ResponseRecorder) <-chan *httptest.ResponseRecorder {
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() { ch <- fn() }()
	return ch
}

// await receives an async answer with a deadline.
func await(t testing.TB, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for an answer")
		return nil
	}
}

// httpBody is a request body from a string.
func httpBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
