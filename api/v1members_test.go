package api

import (
	"net/http"
	"testing"
)

func TestMembershipEndpoints(t *testing.T) {
	h := newHarness(t)
	rec := h.v1(http.MethodPut, "/v1/cluster/nodes/node4", `{"raft_address":"10.0.0.4:7000"}`)
	if rec.Code != http.StatusOK || jsonOf(t, rec)["member"] != true {
		t.Fatalf("add: %d %s", rec.Code, rec.Body.String())
	}
	h.f.membersMu.Lock()
	addr := h.f.members["node4"]
	h.f.membersMu.Unlock()
	if addr != "10.0.0.4:7000" {
		t.Fatalf("cluster saw address %q", addr)
	}
	if rec := h.v1(http.MethodDelete, "/v1/cluster/nodes/node4", ""); rec.Code != http.StatusOK || jsonOf(t, rec)["member"] != false {
		t.Fatalf("remove: %d %s", rec.Code, rec.Body.String())
	}
	for _, bad := range []string{`{}`, `{"raft_address":"nohostport"}`, `{"raft_address":"a:1","x":1}`, `not json`} {
		wantError(t, h.v1(http.MethodPut, "/v1/cluster/nodes/node5", bad), http.StatusBadRequest, "bad_request")
	}
	h.f.membersMu.Lock()
	defer h.f.membersMu.Unlock()
	if _, added := h.f.members["node5"]; added {
		t.Fatal("a bad request changed the membership")
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
