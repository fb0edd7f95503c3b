package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// reporter is a node that redirects lock requests to target and answers
// GET /v1/cluster with members as its servers' API URLs.
func reporter(target string, members ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			if r.Header.Get("Authorization") != "Bearer k" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			body := `{"node_id":"n1","servers":[`
			for i, m := range members {
				if i > 0 {
					body += ","
				}
				body += fmt.Sprintf(`{"id":"n%d","api_url":%q}`, i+1, m)
			}
			w.Write([]byte(body + `]}`))
			return
		}
		w.Header().Set("Location", target+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
}

// A redirect to a node added at runtime (not configured) is followed
// when the redirecting node reports it as a member, and then remembered.
func TestRedirectToReportedMemberIsFollowed(t *testing.T) {
	added := &keyCatcher{}
	asrv := httptest.NewServer(added)
	defer asrv.Close()
	var fsrv *httptest.Server
	fsrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reporter(asrv.URL, fsrv.URL, asrv.URL+"/").ServeHTTP(w, r)
	}))
	defer fsrv.Close()
	c := newTestClient(t, Config{Endpoints: []string{fsrv.URL}, APIKey: "k"})
	l, err := c.Acquire(context.Background(), "x", AcquireOptions{Lifetime: time.Second})
	if err != nil || l.Fence() != 1 {
		t.Fatalf("acquire through a redirect to a reported member: %v", err)
	}
	if got := added.requests(); len(got) != 1 || got[0] != "Bearer k" {
		t.Fatalf("the added node saw %q", got)
	}
	if p := c.leader.Load(); p == nil || *p != asrv.URL {
		t.Fatalf("the added leader is not remembered: %v", p)
	}
}

// A redirect to a host the cluster does not report, or reports only over
// http to an https client, is refused: the key is never sent there.
func TestRedirectToUnreportedHostIsRefused(t *testing.T) {
	rogue := &keyCatcher{}
	rsrv := httptest.NewServer(rogue)
	defer rsrv.Close()
	member := httptest.NewServer(http.NotFoundHandler())
	defer member.Close()
	lies := httptest.NewServer(reporter(rsrv.URL, member.URL))
	defer lies.Close()
	downgrade := httptest.NewTLSServer(reporter(rsrv.URL, rsrv.URL))
	defer downgrade.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"not a member", Config{Endpoints: []string{lies.URL}}},
		{"an http member of an https cluster", Config{Endpoints: []string{downgrade.URL},
			TLS: downgrade.Client().Transport.(*http.Transport).TLSClientConfig}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.APIKey = "k"
			c := newTestClient(t, tc.cfg)
			_, err := c.Acquire(context.Background(), "x", AcquireOptions{})
			if !errors.Is(err, ErrRedirectRefused) {
				t.Fatalf("err = %v, want ErrRedirectRefused", err)
			}
		})
	}
	if got := rogue.requests(); len(got) != 0 {
		t.Fatalf("the unreported host was sent %d requests", len(got))
	}
}

// A remembered leader learned as a member is not called once the cluster
// has not reported it for memberTTL: the key goes only to the nodes the
// cluster currently vouches for.
func TestExpiredMemberIsNotCalled(t *testing.T) {
	gone := &keyCatcher{}
	gsrv := httptest.NewServer(gone)
	defer gsrv.Close()
	live := httptest.NewServer(&keyCatcher{})
	defer live.Close()
	c := newTestClient(t, Config{Endpoints: []string{live.URL}, APIKey: "k"})
	c.members.set(map[string]string{originOf(gsrv.URL): gsrv.URL})
	c.members.learned = time.Now().Add(-2 * memberTTL)
	remembered := gsrv.URL
	c.leader.Store(&remembered)
	if _, err := c.Get(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if got := gone.requests(); len(got) != 0 {
		t.Fatalf("a member no longer reported was sent %d requests", len(got))
	}
	if p := c.leader.Load(); p != nil && *p == gsrv.URL {
		t.Fatal("the expired member is still remembered as the leader")
	}
}
