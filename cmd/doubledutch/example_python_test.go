package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/cluster/tlsutil"
)

// The README's Python example and the complete program it comes from
// (docs/examples/report.py) run with Debian's python3-requests against a
// real three-node HTTPS cluster, through a follower, so the 307 to the
// leader is followed for both the GET and the DELETE.

const pythonExample = "../../docs/examples/report.py"

// pythonWithRequests returns a python3 that can import requests, or skips
// the test loudly: the example is then NOT checked.
func pythonWithRequests(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import requests").Run() == nil {
			return path
		}
	}
	t.Skip("python3 with the requests package is not installed (Debian: apt-get install python3-requests): the README's Python example was NOT tested")
	return ""
}

// pythonEnv keeps requests away from any proxy: the cluster is on loopback.
func pythonEnv(dir string) []string {
	return append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost", "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
}

func TestPythonExampleAgainstARealCluster(t *testing.T) {
	py := pythonWithRequests(t)
	ec := startE2ECluster(t, true)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "api-key.txt"), []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// startE2ECluster wrote the CA beside the nodes' data.
	ca := filepath.Join(filepath.Dir(ec.nodes[0].cfg.DataDir), "certs", tlsutil.CACertFile)
	follower := ec.urls[ec.followers()[0]]

	out := filepath.Join(dir, "out")
	var tokens []string
	for run := 0; run < 2; run++ {
		cmd := exec.Command(py, pythonExample, "--url", follower, "--key-file", filepath.Join(certs, "api-key.txt"), "--ca", ca, "--out", out)
		cmd.Env = pythonEnv(dir)
		got, err := cmd.CombinedOutput()
		t.Logf("report.py run %d:\n%s", run+1, got)
		if err != nil {
			t.Fatalf("report.py: %v", err)
		}
		if !strings.Contains(string(got), "released") {
			t.Fatalf("report.py did not release the lock")
		}
		fence, err := os.ReadFile(filepath.Join(out, "fence"))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, strings.TrimSpace(string(fence)))
		ec.lockIsFree(t, "reports")
	}
	if len(tokens[0]) == 0 || tokens[0] == tokens[1] {
		t.Errorf("fencing tokens of two runs: %q", tokens)
	}

	// The README's snippet itself, with the test cluster's URL and the CA
	// and key where cluster.sh puts them (certs/ in the working directory).
	snippet := readmePython(t)
	snippet = strings.Replace(snippet, `"https://localhost:8001"`, `"`+follower+`"`, 1)
	data, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "ca.crt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snippet.py"), []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(pythonExample)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.py"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "snippet.py")
	cmd.Dir, cmd.Env = dir, pythonEnv(dir)
	if got, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's snippet: %v\n%s", err, got)
	}
	if _, err := os.Stat(filepath.Join(dir, "reports", "report.txt")); err != nil {
		t.Errorf("the README's snippet wrote no report: %v", err)
	}
	ec.lockIsFree(t, "reports")
}

// readmePython returns the README's Python code block.
func readmePython(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```python\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(block, "write_report") {
		t.Fatal("no Python example with write_report in README.md")
	}
	return block
}

// lockIsFree asserts, with a linearizable read at the leader, that the
// lock is not held.
func (ec *e2eCluster) lockIsFree(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := client.New(ec.urls, testKey, ec.tlsConf).Get(ctx, name)
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("lock %s after the example: %+v, %v (want free)", name, l, err)
	}
}
