package api

import (
	"net/http"
	"testing"

	"github.com/doubledutch/doubledutch/cluster"
)

func (f *fakeCluster) setLag(l cluster.Lag) {
	f.stateMu.Lock()
	f.lag = &l
	f.stateMu.Unlock()
}

// A node far behind, or not caught up since it started, refuses stale
// reads with 503 too_stale and says so on /v1/health; the time since
// contact is "unknown", never a huge number.
func TestStaleReadsRefusedWhenBehind(t *testing.T) {
	h := newHarness(t)
	h.acquire("a", `{"owner":"me"}`)
	h.f.setLeader(otherLeader)

	h.f.setLag(cluster.Lag{LeaderID: otherLeader.ID, MaxBehind: 1000})
	wantError(t, h.v1(http.MethodGet, "/v1/locks/a?stale=true", ""), http.StatusServiceUnavailable, "too_stale")
	wantError(t, h.v1(http.MethodGet, "/v1/locks?stale=true", ""), http.StatusServiceUnavailable, "too_stale")
	rec := h.do(req{method: http.MethodGet, target: "/v1/health"})
	m := jsonOf(t, rec)
	if rec.Code != http.StatusServiceUnavailable || m["status"] != "behind" || m["last_contact"] != "unknown" || m["caught_up"] != false {
		t.Fatalf("health of a node never caught up: %d %v", rec.Code, m)
	}

	h.f.setLag(cluster.Lag{LeaderID: otherLeader.ID, Contacted: true, SinceContact: 100e6, CaughtUp: true,
		CommitIndex: 28000, AppliedIndex: 10, EntriesBehind: 27990, MaxBehind: 1000})
	wantError(t, h.v1(http.MethodGet, "/v1/locks/a?stale=true", ""), http.StatusServiceUnavailable, "too_stale")
	rec = h.do(req{method: http.MethodGet, target: "/v1/health"})
	if m := jsonOf(t, rec); rec.Code != http.StatusServiceUnavailable || m["behind_entries"] != 27990.0 || m["last_contact"] != 0.1 {
		t.Fatalf("health of a far-behind node: %d %v", rec.Code, m)
	}

	h.f.setLag(cluster.Lag{LeaderID: otherLeader.ID, Contacted: true, SinceContact: 100e6, CaughtUp: true,
		CommitIndex: 50, AppliedIndex: 45, EntriesBehind: 5, MaxBehind: 1000})
	rec = h.v1(http.MethodGet, "/v1/locks/a?stale=true", "")
	if m := wantOK(t, rec); m["behind_entries"] != 5.0 || m["staleness"] != 0.1 || rec.Header().Get(headerBehind) != "5" {
		t.Fatalf("stale read within the bound: %v %v", m, rec.Header())
	}
	if m := wantOK(t, h.do(req{method: http.MethodGet, target: "/v1/health"})); m["status"] != "ok" || m["behind_entries"] != 5.0 {
		t.Fatalf("health within the bound: %v", m)
	}
}
