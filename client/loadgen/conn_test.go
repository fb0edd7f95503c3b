package loadgen

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestConnAnswers drives the generator's connection against real net/http
// servers answering in every framing net/http uses: Content-Length,
// chunked, a closed connection, a redirect to another server, and a
// retryable 503 followed by success. The request must arrive intact
// (method, path, key, body) and each answer's body must be read whole.
func TestConnAnswers(t *testing.T) {
	var attempts atomic.Int32
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer k" || string(body) != `{"x":1}` {
			http.Error(w, "bad request "+r.Header.Get("Authorization")+" "+string(body), http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte(`{"part":1,`))
			w.(http.Flusher).Flush() // forces chunked framing
			w.Write([]byte(`"part2":2}`))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(`closing`))
		case "/flaky":
			if attempts.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":{"code":"no_leader"}}`))
				return
			}
			w.Write([]byte(`recovered`))
		default:
			w.Write([]byte(r.Method + " " + r.URL.RequestURI()))
		}
	}))
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leader.URL+r.URL.Path+"?wait=3", http.StatusTemporaryRedirect)
	}))
	defer follower.Close()

	c, err := newConn(Target{Endpoints: []string{follower.URL}, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx := context.Background()
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/locks/a", "POST /v1/locks/a?wait=3"}, // via the redirect
		{"DELETE", "/v1/locks/a", "DELETE /v1/locks/a"},    // the leader is remembered
		{"POST", "/chunked", `{"part":1,"part2":2}`},
		{"POST", "/close", "closing"},
		{"POST", "/after-close", "POST /after-close"}, // a new connection
		{"POST", "/flaky", "recovered"},               // 503 no_leader retried
	} {
		out, err := c.call(ctx, tc.method, tc.path, []byte(`{"x":1}`), 0)
		if err != nil || string(out) != tc.want {
			t.Fatalf("%s %s: %q, %v; want %q", tc.method, tc.path, out, err, tc.want)
		}
	}
	// A refusal that is not retryable comes back as a StatusError at once.
	_, err = c.call(ctx, "POST", "/x", []byte(`{"x":2}`), 0)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Body, "bad request") {
		t.Fatalf("bad body: %v; want a 400 StatusError", err)
	}
}
