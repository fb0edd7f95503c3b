package chaos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildBinary compiles the doubledutch command into dir, with the given
// build tags ("" for a normal build). It must run inside the module.
func BuildBinary(dir, tags string) (string, error) {
	name := "doubledutch"
	if tags != "" {
		name += "-" + strings.ReplaceAll(tags, ",", "-")
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "github.com/doubledutch/doubledutch/cmd/doubledutch")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// node is one doubledutch process, restartable from its data directory
// on the same addresses.
type node struct {
	idx      int
	id       string
	bin      string
	args     []string
	env      []string
	logPath  string
	apiURL   string
	raftAddr string // the real Raft listener, behind the proxy
	dataDir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool // SIGSTOPped
	starts  int
	lastErr error
}

// freePort finds a free TCP port on ip. The child binds it a moment
// later; a clash is unlikely and fails loudly at start-up.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the harness's environment without any DOUBLEDUTCH_ setting
// (every flag can come from one), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOUBLEDUTCH_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// start launches the process. Its output goes to its log file, appended
// over restarts.
func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is already running", n.id)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	fmt.Fprintf(logf, "---- start %d at %s\n", n.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, n.args...)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		n.mu.Lock()
		n.lastErr = err
		if n.cmd == cmd {
			n.cmd, n.paused = nil, false
		}
		n.mu.Unlock()
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return nil
}

// running reports whether the process is alive (paused or not).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// serving reports whether the process is alive and not paused.
func (n *node) serving() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.paused
}

func (n *node) signal(sig syscall.Signal) (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil, fmt.Errorf("%s is not running", n.id)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return nil, err
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.exited, nil
}

// kill is kill -9: no handover, no flush beyond what Raft already synced.
func (n *node) kill() error {
	exited, err := n.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-exited
	return nil
}

// stop is SIGSTOP; cont is SIGCONT.
func (n *node) stop() error { _, err := n.signal(syscall.SIGSTOP); return err }
func (n *node) cont() error { _, err := n.signal(syscall.SIGCONT); return err }

// terminate is SIGTERM: the node hands leadership over and exits. After
// timeout it is killed.
func (n *node) terminate(timeout time.Duration) error {
	exited, err := n.signal(syscall.SIGTERM)
	if err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		_ = n.kill()
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", n.id, timeout)
	}
}

// ensureDead kills the process if it runs, even when paused.
func (n *node) ensureDead() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

// logTail is the end of the node's log file (its last 2,000 bytes).
func (n *node) logTail() string {
	data, _ := os.ReadFile(n.logPath)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// exitError is the last process's exit status, for diagnostics.
func (n *node) exitError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(n.lastErr, &ee) && ee.Exited() {
		return n.lastErr
	}
	return nil
}
