package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeRequiresVotersOrJoin: serve without a voter list used to
// bootstrap "this node alone", so a misconfigured node with an empty data
// directory elected itself and granted locks (issue 8, rogue one-node
// cluster). The original command line stays a single node.
func TestServeRequiresVotersOrJoin(t *testing.T) {
	for _, args := range [][]string{nil, {"--node-id", "n1"}, {"--listen", ":8001", "--http"}} {
		_, err := parseServeArgs(args, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--voters") {
			t.Errorf("%q: %v, want a request for --voters or --join", args, err)
		}
	}
	for _, args := range [][]string{
		{"--voters", "node1=127.0.0.1:7000"},
		{"--join", "--node-id", "n4"},
		{"8000", "h", "0", "a", "key"},
	} {
		if _, err := parseServeArgs(args, noEnv, io.Discard); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	if _, err := parseServeArgs([]string{"--node-id", "a b", "--voters", "a b=h:1"}, noEnv, io.Discard); err == nil {
		t.Error("a node id with a space was accepted")
	}
}

// TestKeyFilesAreTrimmed: a key file with trailing spaces or a Windows
// line end made bearer auth impossible (a header value cannot end in a
// space). The admin key is off unless given.
func TestKeyFilesAreTrimmed(t *testing.T) {
	dir := t.TempDir()
	apiFile, adminFile := filepath.Join(dir, "api.txt"), filepath.Join(dir, "admin.txt")
	os.WriteFile(apiFile, []byte("  s3cret \t\r\nignored\n"), 0o600)
	os.WriteFile(adminFile, []byte("adm1n  \n"), 0o600)
	cfg := Config{APIKeyFile: apiFile}
	if key, err := cfg.loadAPIKey(); err != nil || key != "s3cret" {
		t.Fatalf("API key %q, %v", key, err)
	}
	if key, err := cfg.loadAdminKey(); err != nil || key != "" {
		t.Fatalf("admin key without a flag: %q, %v", key, err)
	}
	cfg.AdminKeyFile = adminFile
	if key, err := cfg.loadAdminKey(); err != nil || key != "adm1n" {
		t.Fatalf("admin key %q, %v", key, err)
	}
	os.WriteFile(apiFile, []byte("   \nkey-on-line-two\n"), 0o600)
	if _, err := cfg.loadAPIKey(); err == nil {
		t.Fatal("a blank first line was accepted as a key")
	}
}

// TestLegacyRecordsItsRealRaftAddress: the original command line binds
// Raft to 127.0.0.1:0 and used to record that, an address no peer can
// dial; after a restart it listens on yet another port. The recorded
// address must be the one it listens on, also after a restart.
func TestLegacyRecordsItsRealRaftAddress(t *testing.T) {
	bin := buildBinary(t)
	port := freePort(t)
	dir := t.TempDir()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/cluster", port)
	recorded := func() string {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var st struct {
			Servers []struct {
				Address string `json:"raft_address"`
			} `json:"servers"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Servers) != 1 {
			return ""
		}
		return st.Servers[0].Address
	}
	listening := func(addr string) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	for round := 0; round < 2; round++ {
		proc := startLegacy(t, bin, port, dir)
		var addr string
		waitUntil(t, 15*time.Second, "a recorded Raft address this node listens on", func() bool {
			addr = recorded()
			return addr != "" && !strings.HasSuffix(addr, ":0") && listening(addr)
		})
		t.Logf("round %d: Raft address %s", round, addr)
		_ = proc.Process.Signal(syscall.SIGKILL)
		_, _ = proc.Process.Wait()
	}
}

// TestConnectionCapLeavesDescriptors: the derived API connection cap
// leaves descriptors for Raft and files, so a connection flood queues in
// the kernel instead of making accept fail with "too many open files".
func TestConnectionCapLeavesDescriptors(t *testing.T) {
	for nofile, want := range map[uint64]int{300: 172, 1024: 896, 100: 16, 1 << 20: maxDerivedConnections} {
		if got := capFromLimit(nofile); got != want {
			t.Errorf("capFromLimit(%d) = %d, want %d", nofile, got, want)
		}
	}
	cfg, err := parseServeArgs([]string{"--voters", "node1=127.0.0.1:7000"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.apiConfig("k").MaxConnections; got < 16 {
		t.Fatalf("serve runs with a connection cap of %d", got)
	}
}
