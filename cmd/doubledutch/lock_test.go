package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/internal/ddtest"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

// `doubledutch lock` as a real process against a real three-node cluster
// (processes, each API behind a proxy that can drop the lock's traffic),
// running this test binary as its command (see childMain).

// childEvent is a line the child reported, or its end, with the time this
// process saw it.
type childEvent struct {
	line string // "" for the end of the connection: the child is dead
	at   time.Time
}

// childWatch accepts the child's connection and timestamps what it says.
type childWatch struct {
	ln     net.Listener
	events chan childEvent
}

func watchChild(t *testing.T) *childWatch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	w := &childWatch{ln: ln, events: make(chan childEvent, 16)}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			w.events <- childEvent{line: sc.Text(), at: time.Now()}
		}
		w.events <- childEvent{at: time.Now()}
	}()
	return w
}

func (w *childWatch) next(t *testing.T, timeout time.Duration) childEvent {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case <-time.After(timeout):
		t.Fatalf("no word from the child within %v", timeout)
		return childEvent{}
	}
}

// lockProcess is a running `doubledutch lock`.
type lockProcess struct {
	cmd    *exec.Cmd
	stderr *testlog.Buffer
	done   chan struct{}
}

// startLock runs `doubledutch lock ARGS... -- <this test binary>` (unless
// ARGS has its own "--" and command; DDTEST_SELF names this binary) with
// the child's behaviour in env.
func startLock(t *testing.T, cl *ddtest.Cluster, w *childWatch, args []string, env ...string) *lockProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--") {
		args = append(args, "--", self)
	}
	args = append([]string{"lock"}, args...)
	cmd := exec.Command(lockBinary, args...)
	cmd.Env = append(os.Environ(), "DOUBLEDUTCH_ENDPOINTS="+strings.Join(cl.URLs(), ","),
		"DOUBLEDUTCH_API_KEY="+ddtest.Key, "DDTEST_CHILD=1", "DDTEST_ADDR="+w.ln.Addr().String(), "DDTEST_SELF="+self)
	cmd.Env = append(cmd.Env, env...)
	p := &lockProcess{cmd: cmd, stderr: &testlog.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	// A process the command left behind keeps the output pipe open: do
	// not wait for it once lock has exited.
	cmd.WaitDelay = 2 * time.Second
	ddtest.DieWithParent(cmd) // and its command dies with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		t.Logf("doubledutch lock output:\n%s", p.stderr.String())
	})
	return p
}

func (p *lockProcess) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("doubledutch lock still running after %v", timeout)
		return -1
	}
}

func testClient(t *testing.T, endpoints []string) *client.Client {
	t.Helper()
	c, err := client.NewClient(client.Config{Endpoints: endpoints, APIKey: ddtest.Key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertFree(t *testing.T, c *client.Client, name string) {
	t.Helper()
	if l, err := c.Get(context.Background(), name); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("%s after lock exited: %+v %v, want free", name, l, err)
	}
}

func TestLockRunsTheCommandAndReturnsItsStatus(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	c := testClient(t, cl.URLs())
	w := watchChild(t)
	// Flags after NAME, as people type them.
	p := startLock(t, cl, w, []string{"job", "--lifetime", "5s"}, "DDTEST_EXIT=7")
	hello := w.next(t, 30*time.Second)
	if !strings.Contains(hello.line, " key=false lock=job fence=") {
		t.Fatalf("the child's environment: %q", hello.line)
	}
	fence, _ := strconv.ParseUint(hello.line[strings.LastIndex(hello.line, "=")+1:], 10, 64)
	if fence == 0 {
		t.Fatalf("no fencing token in %q", hello.line)
	}
	if code := p.exitCode(t, 30*time.Second); code != 7 {
		t.Fatalf("exit code %d, want the command's 7", code)
	}
	assertFree(t, c, "job")
}

func TestLockForwardsSignals(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	c := testClient(t, cl.URLs())
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			w := watchChild(t)
			p := startLock(t, cl, w, []string{"--lifetime", "5s", "sig"}, "DDTEST_ON_SIGNAL=42")
			w.next(t, 30*time.Second)
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if ev := w.next(t, 10*time.Second); ev.line != "signal="+strings.ToUpper(sig.String()) {
				t.Fatalf("the child got %q, want the forwarded %v", ev.line, sig)
			}
			if code := p.exitCode(t, 30*time.Second); code != 42 {
				t.Fatalf("exit code %d, want the command's 42", code)
			}
			assertFree(t, c, "sig")
		})
	}
}

func TestLockDoesNotRunTheCommandWhenBusy(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	c := testClient(t, cl.URLs())
	held, err := c.Acquire(context.Background(), "busy", client.AcquireOptions{Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	w := watchChild(t)
	start := time.Now()
	p := startLock(t, cl, w, []string{"busy", "--wait", "300ms"}, "DDTEST_EXIT=0")
	if code := p.exitCode(t, 30*time.Second); code != exitNotAcquired {
		t.Fatalf("exit code %d, want %d (not acquired)", code, exitNotAcquired)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before --wait", waited)
	}
	select {
	case ev := <-w.events:
		t.Fatalf("the command ran: %q", ev.line)
	default:
	}
	if got, err := c.Get(context.Background(), "busy"); err != nil || got.FencingToken != held.Fence() {
		t.Fatalf("the holder's lock: %+v %v", got, err)
	}
}

// Cut off from the cluster, `lock` stops its command (SIGTERM, then
// SIGKILL for one that ignores it) and the command is dead before any
// other client is granted the lock: one timeline, this process's clock.
// Through a shell too: the shell dies of the SIGTERM, the process it
// started ignores it and must still be killed (the whole process group).
func TestLockKillsTheCommandBeforeTheLockCanGoToAnother(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	for _, tc := range []struct {
		name    string
		command []string
		// seeTerm: the command reports its SIGTERM before it dies. Under
		// a shell the shell dies of the SIGTERM at once, and `lock` then
		// kills what it left in the group straight away, so the process
		// it started may die before it can report the SIGTERM.
		seeTerm bool
	}{
		{"direct", nil, true},
		{"under a shell", []string{"--", "sh", "-c", `"$DDTEST_SELF" & wait`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "cut-" + strings.ReplaceAll(tc.name, " ", "-")
			w := watchChild(t)
			args := append([]string{name, "--lifetime", "2s", "--grace", "500ms"}, tc.command...)
			p := startLock(t, cl, w, args, "DDTEST_ON_SIGNAL=ignore")
			w.next(t, 30*time.Second)
			cl.Blackhole(true)
			defer cl.Blackhole(false)
			cut := time.Now()
			granted := cl.GrantElsewhere(t, name, 30*time.Second)
			term, dead := childEnd(t, w, granted.Sub(cut))
			if tc.seeTerm && (term.IsZero() || !term.Before(dead)) {
				t.Fatalf("no SIGTERM before the end (term %v, dead %v after the cut)", term.Sub(cut), dead.Sub(cut))
			}
			if !dead.Before(granted) {
				t.Fatalf("the command died %v after another client's grant", dead.Sub(granted))
			}
			t.Logf("cut at 0; SIGTERM seen at %v, command dead at %v, other client's grant sent at %v",
				term.Sub(cut), dead.Sub(cut), granted.Sub(cut))
			cl.Blackhole(false)
			if code := p.exitCode(t, 30*time.Second); code != exitLost {
				t.Fatalf("exit code %d, want %d (lost)", code, exitLost)
			}
		})
	}
}

// childEnd reads what the child reported by now: when it saw SIGTERM and
// when it died. It fails if the child still lives.
func childEnd(t *testing.T, w *childWatch, grantedAfter time.Duration) (term, dead time.Time) {
	t.Helper()
	for dead.IsZero() {
		select {
		case ev := <-w.events:
			switch ev.line {
			case "signal=TERMINATED":
				term = ev.at
			case "":
				dead = ev.at
			}
		default:
			t.Fatalf("another client was granted the lock %v after the cut while the command lived", grantedAfter)
		}
	}
	return term, dead
}

// A lock granted after a wait longer than its lifetime still runs the
// command under a live lock: the grant is refreshed before it starts
// (counted from the first send, its deadline would already have passed).
func TestLockAfterALongWaitRunsTheCommand(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	c := testClient(t, cl.URLs())
	if _, err := c.Acquire(context.Background(), "queue", client.AcquireOptions{Lifetime: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	w := watchChild(t)
	p := startLock(t, cl, w, []string{"queue", "--wait", "20s", "--lifetime", "1s"}, "DDTEST_EXIT=0")
	w.next(t, 30*time.Second)
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d, want the command's 0", code)
	}
	assertFree(t, c, "queue")
}
