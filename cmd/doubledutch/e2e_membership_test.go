package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCarelessMembershipCallsLeaveASingleNodeWorking is issue 8 item 10 on
// a real process of the original command line: PUT
// /v1/cluster/nodes/a%00 with an unreachable Raft address answered 200 and
// the node never granted a lock again. Now the lock key cannot change
// membership at all, the admin key gets 400 for the id and 409 for the
// unreachable voter, and the node keeps granting.
func TestCarelessMembershipCallsLeaveASingleNodeWorking(t *testing.T) {
	bin := buildBinary(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, fmt.Sprint(port), "h", "0", "a", testKey, "d", t.TempDir(), "--admin-key", "adm1n")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	call := func(method, path, key, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	getlock := func(name string) int {
		return call(http.MethodGet, "/getlock?auth="+testKey+"&lockname="+name, testKey, "")
	}
	waitUntil(t, 15*time.Second, "the single node to grant", func() bool { return getlock("before") == http.StatusOK })
	unreachable := `{"raft_address":"127.0.0.1:1"}`
	for _, tc := range []struct {
		method, path, key, body string
		want                    int
	}{
		{http.MethodPut, "/v1/cluster/nodes/b", testKey, unreachable, http.StatusUnauthorized},
		{http.MethodPut, "/v1/cluster/nodes/a%00", "adm1n", unreachable, http.StatusBadRequest},
		{http.MethodPut, "/v1/cluster/nodes/b", "adm1n", unreachable, http.StatusConflict},
		{http.MethodDelete, "/v1/cluster/nodes/nobody", "adm1n", "", http.StatusNotFound},
	} {
		if got := call(tc.method, tc.path, tc.key, tc.body); got != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if got := getlock("after"); got != http.StatusOK {
		t.Fatalf("after the refused calls /getlock answered %d", got)
	}
}
