package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/cluster"
)

// keyPaths lists every object key of a JSON document as a path, in
// document order ("servers[].id"): the shape of an answer, without its
// values.
func keyPaths(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string
	var walk func(prefix string)
	walk = func(prefix string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, prefix+k.(string))
				walk(prefix + k.(string) + ".")
			}
			dec.Token() // }
		case json.Delim('['):
			for dec.More() {
				walk(strings.TrimSuffix(prefix, ".") + "[].")
			}
			dec.Token() // ]
		}
	}
	walk("")
	return keys
}

// TestClusterFieldNames pins the JSON field names (and order) of GET
// /v1/cluster: api maps cluster.State, the peers and the leader changes
// to its own types, and the wire must not change with cluster's Go names.
func TestClusterFieldNames(t *testing.T) {
	h, o := newOpsHarness(t, "")
	o.peers = []cluster.PeerProgress{{ID: "n1", Address: "127.0.0.1:7001", Suffrage: "Voter", APIURL: "http://n1",
		Role: "leader", Known: true, LastContact: 0, LastLogIndex: 7, EntriesBehind: 0}}
	o.changes = []cluster.LeaderChange{{At: time.Unix(1, 0).UTC(), LeaderID: "n1", Term: 3}}
	rec := h.v1(http.MethodGet, "/v1/cluster?digest=true", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	want := []string{
		"node_id", "raft_state", "term", "commit_index", "applied_index", "last_index", "lease_now_ms",
		"servers", "servers[].id", "servers[].raft_address", "servers[].suffrage", "servers[].leader",
		"leader", "leader.id", "leader.api_url", "leader.is_self",
		"last_contact", "waiters", "state_digest", "digest_index",
		"nodes", "nodes[].id", "nodes[].raft_address", "nodes[].suffrage", "nodes[].api_url", "nodes[].role",
		"nodes[].known", "nodes[].last_contact", "nodes[].last_log_index", "nodes[].entries_behind",
		"leader_changes", "leader_changes[].at", "leader_changes[].leader_id", "leader_changes[].term",
		"leader_changes_total", "lock_count",
	}
	got := keyPaths(t, rec.Body.Bytes())
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("/v1/cluster fields changed:\n got %q\nwant %q\nbody %s", got, want, rec.Body.String())
	}
	if !strings.Contains(rec.Body.String(), `"at":"1970-01-01T00:00:01Z"`) {
		t.Fatalf("leader change time not RFC 3339: %s", rec.Body.String())
	}
}
