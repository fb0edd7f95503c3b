package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestMembershipEndpoints(t *testing.T) {
	h := newHarness(t)
	rec := h.admin(http.MethodPut, "/v1/cluster/nodes/node4", `{"raft_address":"10.0.0.4:7000"}`)
	if rec.Code != http.StatusOK || jsonOf(t, rec)["member"] != true {
		t.Fatalf("add: %d %s", rec.Code, rec.Body.String())
	}
	h.f.membersMu.Lock()
	addr := h.f.members["node4"]
	h.f.membersMu.Unlock()
	if addr != "10.0.0.4:7000" {
		t.Fatalf("cluster saw address %q", addr)
	}
	if rec := h.admin(http.MethodDelete, "/v1/cluster/nodes/node4", ""); rec.Code != http.StatusOK || jsonOf(t, rec)["member"] != false {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body.String())
	}
	for _, bad := range []string{`{}`, `{"raft_address":"nohostport"}`, `{"raft_address":"a:1","x":1}`, `not json`} {
		wantError(t, h.admin(http.MethodPut, "/v1/cluster/nodes/node5", bad), http.StatusBadRequest, "bad_request")
	}
	h.f.membersMu.Lock()
	defer h.f.membersMu.Unlock()
	if _, added := h.f.members["node5"]; added {
		t.Fatal("a bad request changed the membership")
	}
}

// TestMembershipValidation: ids are percent-decoded and restricted,
// addresses must be dialable, a change that would lose the quorum is
// refused unless forced, and removing a non-member is a 404 (issue 8
// item 10). Nothing refused reaches the cluster.
func TestMembershipValidation(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"a%00", "a%20b", "..%2Fx", "%C3%A9", strings.Repeat("n", 65)} {
		wantError(t, h.admin(http.MethodPut, "/v1/cluster/nodes/"+id, `{"raft_address":"10.0.0.9:7000"}`), http.StatusBadRequest, "bad_request")
	}
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:7000", "[::]:7000", ":7000", "h:99999", "h:x", "h"} {
		wantError(t, h.admin(http.MethodPut, "/v1/cluster/nodes/n9", `{"raft_address":"`+addr+`"}`), http.StatusBadRequest, "bad_request")
	}
	dead := `{"raft_address":"` + fakeDeadHost + `:7000"}`
	wantError(t, h.admin(http.MethodPut, "/v1/cluster/nodes/n9", dead), http.StatusConflict, "quorum_at_risk")
	wantError(t, h.admin(http.MethodPut, "/v1/cluster/nodes/n9?force=maybe", dead), http.StatusBadRequest, "bad_request")
	wantError(t, h.admin(http.MethodDelete, "/v1/cluster/nodes/never-added", ""), http.StatusNotFound, "not_found")
	h.f.membersMu.Lock()
	if len(h.f.members) != 0 {
		t.Fatalf("refused changes reached the cluster: %v", h.f.members)
	}
	h.f.membersMu.Unlock()
	wantOK(t, h.admin(http.MethodPut, "/v1/cluster/nodes/n9?force=true", dead))
	m := wantOK(t, h.admin(http.MethodPut, "/v1/cluster/nodes/node%2D5", `{"raft_address":"10.0.0.5:7000"}`))
	if m["id"] != "node-5" {
		t.Fatalf("id not percent-decoded: %v", m)
	}
	wantOK(t, h.admin(http.MethodDelete, "/v1/cluster/nodes/node-5", ""))
}

// TestAdminKeyIsSeparate: membership takes the admin key, not the lock
// key, and is disabled on a node without one.
func TestAdminKeyIsSeparate(t *testing.T) {
	h := newHarness(t)
	body := `{"raft_address":"10.0.0.4:7000"}`
	wantError(t, h.v1(http.MethodPut, "/v1/cluster/nodes/node4", body), http.StatusUnauthorized, "unauthorized")
	wantError(t, h.admin(http.MethodPost, "/v1/locks/x", ""), http.StatusUnauthorized, "unauthorized")
	m := wantError(t, h.do(req{method: http.MethodPut, target: "/v1/cluster/nodes/node4", body: body}), http.StatusUnauthorized, "unauthorized")
	if msg := m["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "--location-trusted") {
		t.Fatalf("401 without the redirect hint: %q", msg)
	}
	wantOK(t, h.admin(http.MethodPut, "/v1/cluster/nodes/node4", body))

	off := newHarness(t, func(c *Config) { c.AdminKey = "" })
	wantError(t, off.admin(http.MethodPut, "/v1/cluster/nodes/node4", body), http.StatusForbidden, "admin_disabled")
	wantError(t, off.v1(http.MethodDelete, "/v1/cluster/nodes/node4", ""), http.StatusForbidden, "admin_disabled")
	if _, err := New(Config{APIKey: "same", AdminKey: "same"}, newFake(), nil); err == nil {
		t.Fatal("New accepted an admin key equal to the API key")
	}
}

func TestClusterStateDigest(t *testing.T) {
	h := newHarness(t)
	plain := jsonOf(t, h.get("/v1/cluster"))
	if _, ok := plain["state_digest"]; ok {
		t.Fatal("digest computed without being asked for")
	}
	m := jsonOf(t, h.get("/v1/cluster?digest=true"))
	if d, _ := m["state_digest"].(string); len(d) != 64 || m["digest_index"] == nil {
		t.Fatalf("digest answer %v", m)
	}
	wantError(t, h.get("/v1/cluster?digest=maybe"), http.StatusBadRequest, "bad_request")
}
