package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/internal/testlog"
)

// freeDevPort finds a port P such that dev's six ports (API P..P+2, Raft
// P-1000..P-998) are free at the moment. The child binds them a moment
// later; a clash is unlikely and fails loudly.
func freeDevPort(t *testing.T) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		p := freePort(t)
		if p < 2100 || p > 65533 {
			continue
		}
		var lns []net.Listener
		ok := true
		for _, q := range []int{p, p + 1, p + 2, p - 1000, p - 999, p - 998} {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free run of ports for dev")
	return 0
}

// devHealthy reports whether every dev node answers healthy.
func devHealthy(port int) bool {
	for i := 0; i < 3; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/health", port+i))
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

func portClosed(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// noDevDataLeft fails when dev left its temporary data directory behind.
func noDevDataLeft(t *testing.T, tmp string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(tmp, "doubledutch-dev-*"))
	if len(left) > 0 {
		t.Errorf("dev left its data behind: %v", left)
	}
}

// TestDevStopsQuietlyOnInterrupt: a Ctrl-C of `dev` is a planned shutdown
// of the whole cluster; it used to print about 25 Raft ERROR/WARN lines
// (failed appendEntries, stepping down) that look like a crash.
func TestDevStopsQuietlyOnInterrupt(t *testing.T) {
	bin := buildBinary(t)
	port := freeDevPort(t)
	tmp := t.TempDir()
	var stdout, stderr testlog.Buffer
	cmd := exec.Command(bin, "dev", "--port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	waitUntil(t, 20*time.Second, "three healthy dev nodes", func() bool { return devHealthy(port) })
	// Take a lock so that shutting down has replication to interrupt.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/getlock?auth=%s&lockname=x", port, devKey(t, stdout.String())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	before := len(stderr.String())
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("dev exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30 s of SIGINT")
	}
	after := stderr.String()[before:]
	if strings.Contains(after, "[ERROR]") || strings.Contains(after, "[WARN]") {
		t.Errorf("a planned shutdown logged errors or warnings:\n%s", after)
	}
	if !strings.Contains(stdout.String(), "stopping the dev cluster\nstopped\n") {
		t.Errorf("stdout does not say it stopped:\n%s", stdout.String())
	}
	noDevDataLeft(t, tmp)
}

// devKey reads the API key from dev's banner.
func devKey(t *testing.T, banner string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(banner))
	for sc.Scan() {
		if k, ok := strings.CutPrefix(sc.Text(), "API key: "); ok {
			return k
		}
	}
	t.Fatalf("no API key in the banner:\n%s", banner)
	return ""
}

// TestDevExitsWhenItsParentDies: `go run ./cmd/doubledutch dev &` does not
// pass a signal on to dev, and killing the go command used to leave dev
// running with the ports taken. A shell stands in for the go command.
func TestDevExitsWhenItsParentDies(t *testing.T) {
	bin := buildBinary(t)
	port := freeDevPort(t)
	tmp := t.TempDir()
	sh := exec.Command("/bin/sh", "-c", `"$0" dev --port "$1" >/dev/null 2>&1 & echo $!; wait`, bin, strconv.Itoa(port))
	sh.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child pid %q: %v", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	go io.Copy(io.Discard, out)
	waitUntil(t, 20*time.Second, "three healthy dev nodes", func() bool { return devHealthy(port) })

	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	waitUntil(t, 20*time.Second, "dev to stop after its parent died", func() bool {
		return portClosed(port) && portClosed(port+1) && portClosed(port+2)
	})
	waitUntil(t, 10*time.Second, "dev to remove its data", func() bool {
		left, _ := filepath.Glob(filepath.Join(tmp, "doubledutch-dev-*"))
		return len(left) == 0
	})
}
