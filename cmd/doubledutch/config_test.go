package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/api"
)

func noEnv(string) string { return "" }

func TestLegacyCommandLine(t *testing.T) {
	cfg, err := parseServeArgs([]string{"8000", "n", "123", "p", "250", "t", "4", "h", "0", "a", "98765"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Numeric names and keys are text, unlike in the original.
	if cfg.Listen != ":8000" || cfg.ServerName != "123" || cfg.APIKey != "98765" || !cfg.HTTP ||
		cfg.Tick != 250*time.Millisecond || cfg.Threads != 4 {
		t.Fatalf("parsed %+v", cfg)
	}
	if cfg.APIURL != "http://127.0.0.1:8000" || len(cfg.Voters) != 1 || cfg.Voters[0].ID != cfg.NodeID {
		t.Fatalf("derived api url %q voters %+v", cfg.APIURL, cfg.Voters)
	}
}

func TestLegacyCommandLineErrors(t *testing.T) {
	for _, args := range [][]string{
		{"8000", "p", "fast"},
		{"8000", "p", "-1"},
		{"8000", "t", "0"},
		{"8000", "h", "2"},
		{"8000", "x", "1"},
		{"8000", "a"},
		{"8000", "h", "0", "extra"},
	} {
		if _, err := parseServeArgs(args, noEnv, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		} else {
			t.Logf("%q: %v", args, err)
		}
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{
		"DOUBLEDUTCH_NODE_ID":   "n2",
		"DOUBLEDUTCH_RAFT_BIND": "0.0.0.0:7002",
		"DOUBLEDUTCH_VOTERS":    "n1=a:7001,n2=b:7002,n3=c:7003",
		"DOUBLEDUTCH_HTTP":      "true",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := parseServeArgs([]string{"--raft-advertise", "b:7002", "--listen", ":8002", "--api-url", "http://b:8002"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != "n2" || cfg.RaftBind != "0.0.0.0:7002" || len(cfg.Voters) != 3 || !cfg.HTTP || cfg.APIURL != "http://b:8002" {
		t.Fatalf("parsed %+v", cfg)
	}
	// A flag given on the command line wins over the environment.
	cfg, err = parseServeArgs([]string{"--node-id", "n3", "--voters", "n3=c:7003"}, getenv, io.Discard)
	if err != nil || cfg.NodeID != "n3" {
		t.Fatalf("flag over env: %+v %v", cfg, err)
	}
	if _, err := parseServeArgs(nil, func(k string) string {
		if k == "DOUBLEDUTCH_TICK" {
			return "soon"
		}
		return ""
	}, io.Discard); err == nil || !strings.Contains(err.Error(), "DOUBLEDUTCH_TICK") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, args := range [][]string{
		{"--voters", "n1"},
		{"--voters", "n1=nohostport"},
		{"--api-url", "ftp://x"},
		{"--raft-tls-cert", "a.crt"},
		{"--log-format", "xml"},
		{"--tick", "0s"},
		{"--node-id", ""},
		{"--join", "--voters", "n1=a:1"},
	} {
		if _, err := parseServeArgs(args, noEnv, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}

func TestAPIKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.txt")
	if err := os.WriteFile(path, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{APIKeyFile: path}
	if key, err := cfg.loadAPIKey(); err != nil || key != "s3cret" {
		t.Fatalf("key %q, %v", key, err)
	}
	cfg.APIKeyFile = filepath.Join(t.TempDir(), "missing.txt")
	if _, err := cfg.loadAPIKey(); err == nil {
		t.Fatal("missing key file accepted")
	}
	cfg.APIKey = "direct"
	if key, _ := cfg.loadAPIKey(); key != "direct" {
		t.Fatalf("direct key ignored: %q", key)
	}
}

func TestHealthSkipsVerificationOnlyOnLoopback(t *testing.T) {
	for u, want := range map[string]bool{
		"https://127.0.0.1:8000": true,
		"https://localhost:8001": true,
		"https://[::1]:8000":     true,
		"https://node1:8000":     false,
		"https://10.0.0.5:8000":  false,
		"::bad":                  false,
	} {
		if got := isLoopbackURL(u); got != want {
			t.Errorf("isLoopbackURL(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestMissingCertificateIsAClearError(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{TLSCert: filepath.Join(dir, "certificate.crt"), TLSKey: filepath.Join(dir, "privateKey.key")}
	_, err := cfg.apiTLS()
	if err == nil || !strings.Contains(err.Error(), "certificate.crt") || !strings.Contains(err.Error(), "--http") {
		t.Fatalf("missing certificate: %v", err)
	}
	cfg.HTTP = true
	if conf, err := cfg.apiTLS(); conf != nil || err != nil {
		t.Fatalf("plain HTTP still loads certificates: %v %v", conf, err)
	}
}

func TestJoinDoesNotBootstrap(t *testing.T) {
	cfg, err := parseServeArgs([]string{"--join", "--node-id", "n4"}, noEnv, io.Discard)
	if err != nil || len(cfg.Voters) != 0 {
		t.Fatalf("a joining node got voters %+v (%v): it would bootstrap a cluster of its own", cfg.Voters, err)
	}
}

// --leader-wait bounds the wait for a leader (default api's 5 s, also on
// the original command line) and reaches api.Config.
func TestLeaderWaitFlag(t *testing.T) {
	cfg, err := parseServeArgs([]string{"8000", "h", "0", "a", "98765"}, noEnv, io.Discard)
	if err != nil || cfg.LeaderWait != api.DefaultLeaderWait {
		t.Fatalf("legacy default: %v %v", cfg.LeaderWait, err)
	}
	cfg, err = parseServeArgs([]string{"--node-id", "n1", "--voters", "n1=a:7001", "--leader-wait", "2s"}, noEnv, io.Discard)
	if err != nil || cfg.LeaderWait != 2*time.Second {
		t.Fatalf("--leader-wait 2s: %v %v", cfg.LeaderWait, err)
	}
	if _, err := parseServeArgs([]string{"--node-id", "n1", "--voters", "n1=a:7001", "--leader-wait", "-1s"}, noEnv, io.Discard); err == nil {
		t.Fatal("a negative --leader-wait was accepted")
	}
}
