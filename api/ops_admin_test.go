package api

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/fsm"
)

// opsFake gives the fake cluster the operator endpoints (Ops), counting
// the calls that reach them: a refused request must reach nothing.
type opsFake struct {
	*fakeCluster
	transfers atomic.Int64
	backups   atomic.Int64
	// peers and changes are what Peers and LeaderChanges answer (set
	// before the server serves).
	peers   []cluster.PeerProgress
	changes []cluster.LeaderChange
}

func (o *opsFake) Peers() []cluster.PeerProgress { return o.peers }
func (o *opsFake) LeaderChanges() ([]cluster.LeaderChange, uint64) {
	return o.changes, uint64(len(o.changes))
}
func (o *opsFake) LockCount() int             { return 0 }
func (o *opsFake) OnApplied(func(fsm.Result)) {}

func (o *opsFake) TransferLeadership(string) error {
	o.transfers.Add(1)
	return nil
}

func (o *opsFake) Backup(_ context.Context, w io.Writer) (uint64, error) {
	o.backups.Add(1)
	_, err := io.WriteString(w, "backup-bytes")
	return 1, err
}

// newOpsHarness is a Server on an opsFake with the given admin key.
func newOpsHarness(t *testing.T, adminKey string) (*harness, *opsFake) {
	t.Helper()
	f := &opsFake{fakeCluster: newFake()}
	s, err := New(Config{APIKey: testKey, AdminKey: adminKey}, f, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(); f.close() })
	return &harness{t: t, f: f.fakeCluster, s: s}, f
}

// opsEndpoints are the operator endpoints that take the admin key.
var opsEndpoints = []struct{ method, target, body string }{
	{http.MethodPost, "/v1/cluster/leader", `{"target":"n2"}`},
	{http.MethodGet, "/v1/snapshot", ""},
}

// TestOperatorEndpointsNeedAdminKey: leadership transfer and backup take
// the admin key as a bearer key. The lock key is refused: a backup holds
// every session token, so a lock client could read another's and release
// its lock. No key, a wrong key and the admin key in the query are
// refused too, and a node without an admin key answers 403
// admin_disabled whatever is sent. Nothing refused reaches the cluster.
func TestOperatorEndpointsNeedAdminKey(t *testing.T) {
	h, f := newOpsHarness(t, testAdminKey)
	for _, op := range opsEndpoints {
		for _, r := range []req{
			{method: op.method, target: op.target, body: op.body, bearer: testKey},
			{method: op.method, target: op.target, body: op.body},
			{method: op.method, target: op.target, body: op.body, bearer: "wrong"},
			{method: op.method, target: op.target + "?auth=" + testAdminKey, body: op.body},
		} {
			wantError(t, h.do(r), http.StatusUnauthorized, "unauthorized")
		}
	}
	if n, m := f.transfers.Load(), f.backups.Load(); n != 0 || m != 0 {
		t.Fatalf("refused requests reached the cluster: %d transfers, %d backups", n, m)
	}
	if m := wantOK(t, h.admin(http.MethodPost, "/v1/cluster/leader", `{"target":"n2"}`)); m["previous_leader"] != fakeSelf {
		t.Fatalf("transfer with the admin key: %v", m)
	}
	rec := h.admin(http.MethodGet, "/v1/snapshot", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "backup-bytes" {
		t.Fatalf("backup with the admin key: %d %q", rec.Code, rec.Body.String())
	}
	if n, m := f.transfers.Load(), f.backups.Load(); n != 1 || m != 1 {
		t.Fatalf("admin requests: %d transfers, %d backups, want 1 each", n, m)
	}

	off, offF := newOpsHarness(t, "")
	for _, op := range opsEndpoints {
		for _, key := range []string{testKey, testAdminKey, ""} {
			r := req{method: op.method, target: op.target, body: op.body, bearer: key}
			wantError(t, off.do(r), http.StatusForbidden, "admin_disabled")
		}
	}
	if n, m := offF.transfers.Load(), offF.backups.Load(); n != 0 || m != 0 {
		t.Fatalf("a node without an admin key served %d transfers, %d backups", n, m)
	}
}
