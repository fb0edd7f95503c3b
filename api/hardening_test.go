package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/doubledutch/doubledutch/cluster"
)

// TestRedactQueryHidesSecrets: the debug request log must not show a key
// or token however the query spells it (issue 8 item 12).
func TestRedactQueryHidesSecrets(t *testing.T) {
	const secret = "s3cretValue"
	for _, raw := range []string{
		secret,                                  // ?KEY
		"lockname=x;auth=" + secret,             // ';' separator
		"auth%3D" + secret,                      // '=' percent-encoded
		"token%3D" + secret,                     // same for a token
		"lockname=x&" + secret + "=1",           // the secret as a name
		"lockname=x;token=" + secret + "&limit", // mixed separators
		"request_id=" + secret,                  // ids act as secrets
	} {
		got := redactQuery(raw)
		if strings.Contains(got, secret) {
			t.Errorf("redactQuery(%q) = %q leaks the secret", raw, got)
		}
	}
	if got := redactQuery("lockname=x;timeout=3"); got != "lockname=x&timeout=3" {
		t.Errorf("safe values lost: %q", got)
	}
	if got := redactQuery("lockname=" + strings.Repeat("n", 5000)); len(got) > maxLoggedValue+32 {
		t.Errorf("a long value is logged whole (%d bytes)", len(got))
	}
}

// TestOverlongNameNotEchoed: a huge lock name comes back neither in an
// error body nor, from a follower, in a Location header (issue 8 item 12).
func TestOverlongNameNotEchoed(t *testing.T) {
	h := newHarness(t)
	huge := strings.Repeat("n", 1<<20)
	rec := h.get("/getlock?auth=" + testKey + "&lockname=" + huge)
	m := wantError(t, rec, http.StatusRequestURITooLong, "uri_too_long")
	if rec.Body.Len() > 1024 || m["lockacquired"] != false {
		t.Fatalf("error body is %d bytes, legacy fields %v", rec.Body.Len(), m)
	}
	// Over the name limit but within the URL bound: a 400 whose legacy
	// "lockname" echo is clipped.
	rec = h.get("/getlock?auth=" + testKey + "&lockname=" + strings.Repeat("é", 200))
	m = wantError(t, rec, http.StatusBadRequest, "bad_request")
	if name, _ := m["lockname"].(string); len(name) > 80 || !strings.HasPrefix(name, "é") {
		t.Fatalf("lockname echoed as %d bytes: %q", len(name), name)
	}

	h.f.setLeader(cluster.LeaderInfo{ID: "n2", APIURL: "http://n2.test:8002"})
	for _, target := range []string{"/v1/locks/" + huge, "/getlock?auth=" + testKey + "&lockname=" + huge} {
		rec = h.do(req{method: http.MethodPost, target: target, bearer: testKey})
		if loc := rec.Header().Get("Location"); loc != "" || rec.Code == http.StatusTemporaryRedirect {
			t.Fatalf("follower redirected an over-long request (Location %d bytes)", len(loc))
		}
		if rec.Code != http.StatusRequestURITooLong || rec.Body.Len() > 1024 {
			t.Fatalf("status %d, body %d bytes", rec.Code, rec.Body.Len())
		}
	}
	// A name within bounds is still redirected.
	if rec := h.v1(http.MethodPost, "/v1/locks/fine", ""); rec.Code != http.StatusTemporaryRedirect {
		t.Fatalf("ordinary request: status %d", rec.Code)
	}
}

// TestStrictJSONBodies: v1 bodies are decoded strictly, and a refused body
// changes nothing (issue 8 item 12).
func TestStrictJSONBodies(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{
		`{"LIFETIME":5}`,                    // keys are case-sensitive
		`{"Owner":"x"}`,                     // ditto
		`{"lifetime":-1,"lifetime":5}`,      // a duplicate key is refused
		`{"owner":"a","owner":"b"}`,         // whatever its values
		"{\"owner\":\"bad\xffbyte\"}",       // invalid UTF-8 is not stored as U+FFFD
		"{\"owner\":\"ok\",\"x\xff\":1}",    // nor in a key
		`{"owner":"lone \ud800 surrogate"}`, // decoded as U+FFFD by encoding/json
		`[]`,
	} {
		rec := h.v1(http.MethodPost, "/v1/locks/strict", body)
		wantError(t, rec, http.StatusBadRequest, "bad_request")
		if strings.Contains(rec.Body.String(), "\ufffd") {
			t.Errorf("%q: answer carries U+FFFD: %s", body, rec.Body.String())
		}
	}
	wantError(t, h.v1(http.MethodGet, "/v1/locks/strict", ""), http.StatusNotFound, "not_found")
	if n := h.f.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals from refused bodies", n)
	}
	// The documented spelling still works, with nested whitespace.
	m := wantOK(t, h.v1(http.MethodPost, "/v1/locks/strict", ` { "lifetime" : 5 , "owner" : "ünï" } `))
	if m["lifetime"] != 5.0 || m["owner"] != "ünï" {
		t.Fatalf("grant %v", m)
	}
}

// TestNFCAndNFDNamesAreDistinct pins the documented choice: names are
// compared byte for byte, as the original did, so the two Unicode
// spellings of "é" are two locks. Clients that want one lock per visible
// name normalise before they call.
func TestNFCAndNFDNamesAreDistinct(t *testing.T) {
	h := newHarness(t)
	wantOK(t, h.v1(http.MethodPost, "/v1/locks/caf%C3%A9", ""))  // NFC
	wantOK(t, h.v1(http.MethodPost, "/v1/locks/cafe%CC%81", "")) // NFD
}
