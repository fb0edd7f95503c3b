package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The fuzz targets feed arbitrary input through the full handler stack,
// on a fresh fake cluster each time, and check the promises of
// docs/design.md, Bad input: no panic, no 5xx, every refusal a 4xx JSON error, and a
// request refused by validation proposes nothing and changes no state.
// Seeds are below and in testdata/fuzz/.

func fuzzHarness(t *testing.T) *harness {
	return newHarness(t, func(c *Config) { c.MaxWait = 50 * time.Millisecond; c.MaxBodyBytes = 1024 })
}

// serveRaw sends a request built by hand: httptest.NewRequest panics on
// targets a fuzzer easily produces.
func (h *harness) serveRaw(method, path, rawQuery, body string, hdr http.Header) *httptest.ResponseRecorder {
	r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "192.0.2.1:1", Host: "n1.test"}
	if body != "" {
		r.Body = httpBody(body)
		r.ContentLength = int64(len(body))
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	rec := httptest.NewRecorder()
	h.s.ServeHTTP(rec, r)
	return rec
}

// checkAnswer checks one fuzzed answer. heldOnSuccess is how many locks
// the request may grant when it succeeds.
func checkAnswer(t *testing.T, h *harness, rec *httptest.ResponseRecorder, heldOnSuccess int) {
	t.Helper()
	m := jsonOf(t, rec)
	switch {
	case rec.Code == http.StatusOK:
		// Grants, not locks held: a 1 ms lifetime may expire before this
		// check runs.
		if n := len(h.f.grantedOwners()); n != heldOnSuccess {
			t.Fatalf("200 granted %d locks, want %d: %s", n, heldOnSuccess, rec.Body.String())
		}
		return
	case rec.Code < 400 || rec.Code >= 500:
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	e, ok := m["error"].(map[string]any)
	if !ok || e["code"] == "" || e["message"] == "" {
		t.Fatalf("4xx without an error object: %s", rec.Body.String())
	}
	if h.f.m.Len() != 0 || len(h.f.grantedOwners()) != 0 {
		t.Fatalf("a refused request changed state: %s", rec.Body.String())
	}
	// Refusals by the lock state (busy, not_held) were proposed; anything
	// else was refused before reaching the log.
	if code := e["code"]; code != "busy" && code != "not_held" && h.f.proposals.Load() != 0 {
		t.Fatalf("%v refusal proposed a command: %s", code, rec.Body.String())
	}
}

func FuzzGetLockQuery(f *testing.F) {
	for _, s := range []string{
		"lockname=a", "lockname=a&timeout=0.01&lifetime=2", "lockname=&timeout=1", "lockname=a&timeout=-1",
		"lockname=a&lifetime=NaN", "lockname=a&lifetime=1e309", "lockname=%zz", "lockname=a%00",
		"lockname=a&lockname=b", "auth=wrong&lockname=a", "lockname=a;b", "lockname=%C3%A9&lifetime=0x1p-2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		h := fuzzHarness(t)
		hdr := http.Header{"Authorization": {"Bearer " + testKey}}
		rec := h.serveRaw(http.MethodGet, "/getlock", query, "", hdr)
		checkAnswer(t, h, rec, 1)
		if rec.Code == http.StatusOK && !strings.Contains(rec.Body.String(), `"lockacquired":true`) {
			t.Fatalf("a free lock was not granted: %s", rec.Body.String())
		}
	})
}

func FuzzReleaseLockQuery(f *testing.F) {
	for _, s := range []string{
		"lockname=a&token=00112233445566778899aabbccddeeff", "lockname=a&token=zz", "lockname=&token=",
		"token=00112233445566778899AABBCCDDEEFF", "lockname=a&token=00112233445566778899aabbccddeef%00",
		"auth=wrong&lockname=a&token=00112233445566778899aabbccddeeff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		h := fuzzHarness(t)
		rec := h.serveRaw(http.MethodDelete, "/releaselock", query, "", nil)
		if rec.Code == http.StatusOK {
			t.Fatalf("released a lock nobody holds: %s", rec.Body.String())
		}
		checkAnswer(t, h, rec, 0)
	})
}

func FuzzV1Request(f *testing.F) {
	f.Add(uint8(0), "a", `{"lifetime":1.5,"wait":0,"owner":"me","request_id":"r-1-0123456789abcd"}`)
	f.Add(uint8(0), "jobs/nightly", ``)
	f.Add(uint8(0), "a", `{"lifetime":-1}`)
	f.Add(uint8(0), "a", `{"wait":1e999}`)
	f.Add(uint8(0), "", `{}`)
	f.Add(uint8(0), "a\x00b", `{}`)
	f.Add(uint8(0), "\xff", `{}`)
	f.Add(uint8(1), "a", `{"token":"00112233445566778899aabbccddeeff","request_id":"x"}`)
	f.Add(uint8(1), "a", `{"token":"nope"}`)
	f.Add(uint8(2), "a", `{"token":"00112233445566778899aabbccddeeff","lifetime":3}`)
	f.Add(uint8(2), "a", `{"token":"00112233445566778899aabbccddeeff","lifetime":"3"}`)
	f.Add(uint8(3), "a", ``)
	f.Fuzz(func(t *testing.T, op uint8, name, body string) {
		h := fuzzHarness(t)
		method, suffix := http.MethodPost, ""
		switch op % 4 {
		case 1:
			method = http.MethodDelete
		case 2:
			suffix = "/refresh"
		case 3:
			method = http.MethodGet
		}
		hdr := http.Header{"Authorization": {"Bearer " + testKey}}
		rec := h.serveRaw(method, "/v1/locks/"+name+suffix, "", body, hdr)
		checkAnswer(t, h, rec, 1)
		if rec.Code == http.StatusOK && (method != http.MethodPost || suffix != "") {
			t.Fatalf("%s %s succeeded on an empty cluster: %s", method, suffix, rec.Body.String())
		}
	})
}
