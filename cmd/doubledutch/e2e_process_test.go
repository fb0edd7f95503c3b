package main

import (
	"context"
	"fmt"
	"math/rand/v2"
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

	"github.com/doubledutch/doubledutch/client"
)

func TestHTTPSClusterWithGeneratedCertificates(t *testing.T) {
	ec := startE2ECluster(t, true)
	c := ec.v1Client()
	l, err := c.Acquire(context.Background(), "tls", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Every node's certificate verifies against the CA, and reads through
	// followers reach the same lock.
	for _, u := range ec.urls {
		// u first; the others so that its redirect to the leader is followed.
		got, err := client.New(append([]string{u}, ec.urls...), testKey, ec.tlsConf).Get(context.Background(), "tls")
		if err != nil || got.FencingToken != l.Fence() {
			t.Fatalf("read via %s: %+v %v", u, got, err)
		}
	}
	// A client that does not trust the CA is refused by the handshake.
	if _, err := http.Get(ec.urls[0] + "/v1/health"); err == nil {
		t.Fatal("an unverified TLS connection succeeded")
	}
}

// buildBinary compiles doubledutch once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "doubledutch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a port that is free now, for a child process to bind
// a moment later. It is drawn below the kernel's ephemeral range: a port
// the kernel hands out from :0 is in that range, and on a busy machine
// (many tests, many loopback connections) an outgoing connection could
// take it before the child bound it ("address already in use"). Ports
// outside the range are never given to connections.
func freePort(t *testing.T) int {
	t.Helper()
	low := ephemeralLow()
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		if l, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 11000 {
				low = v
			}
		}
	}
	return low
}

func startLegacy(t *testing.T, bin string, port int, dataDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, fmt.Sprint(port), "h", "0", "a", testKey, "d", dataDir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// TestLegacySingleNodeSurvivesKill9 runs the original command line as a
// real process: a kill -9 and restart keep every lock (the original lost
// them all), and SIGTERM ends the process cleanly.
func TestLegacySingleNodeSurvivesKill9(t *testing.T) {
	bin := buildBinary(t)
	port := freePort(t)
	dir := t.TempDir()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	c := client.New([]string{url}, testKey, nil)
	proc := startLegacy(t, bin, port, dir)
	var held *client.Lock
	waitUntil(t, 15*time.Second, "the single node to grant", func() bool {
		var err error
		held, err = c.Acquire(context.Background(), "durable", client.AcquireOptions{Lifetime: time.Hour})
		return err == nil
	})
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = proc.Process.Wait()

	proc = startLegacy(t, bin, port, dir)
	var got *client.LockInfo
	waitUntil(t, 15*time.Second, "the restarted node to answer", func() bool {
		var err error
		got, err = c.Get(context.Background(), "durable")
		return err == nil
	})
	if got.FencingToken != held.Fence() || got.ExpiresIn < 50*time.Minute {
		t.Fatalf("after kill -9: %+v, want fence %d", got, held.Fence())
	}
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of SIGTERM")
	}
}
