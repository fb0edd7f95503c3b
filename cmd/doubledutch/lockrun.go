package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// lockRun is `doubledutch lock NAME [flags] -- COMMAND [ARGS...]`: hold a
// lock while a command runs, and stop the command (fail closed) before the
// lock could expire if it cannot be kept.
type lockRun struct {
	cf       clientFlags
	name     string
	command  []string
	wait     time.Duration
	lifetime time.Duration
	grace    time.Duration
	owner    string
}

const lockSynopsis = "lock NAME [--wait D] [--lifetime D] [--grace D] -- COMMAND [ARGS...]"

func lockCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	r, err := parseLock(args, getenv, stdout)
	if err != nil {
		return parseFailed(stderr, "lock", err, exitLockFailed)
	}
	c, err := r.cf.client()
	if err != nil {
		return fail(stderr, exitLockFailed, err)
	}
	actx, cancel := context.WithTimeout(ctx, r.wait+opTimeout)
	l, err := c.Acquire(actx, r.name, client.AcquireOptions{Lifetime: r.lifetime, Wait: r.wait, Owner: r.owner, KeepAlive: true})
	cancel()
	if errors.Is(err, client.ErrBusy) {
		return fail(stderr, exitNotAcquired, fmt.Errorf("lock %s is busy: not acquired within %v; the command was not run", r.name, r.wait))
	}
	if ctx.Err() != nil {
		return fail(stderr, exitLockFailed, fmt.Errorf("interrupted while acquiring lock %s; the command was not run", r.name))
	}
	if err != nil {
		return fail(stderr, exitLockFailed, fmt.Errorf("lock %s not acquired: %w", r.name, err))
	}
	return r.runUnder(l, stderr)
}

func parseLock(args []string, getenv func(string) string, stdout io.Writer) (*lockRun, error) {
	r := &lockRun{}
	fs := newFlags("lock", lockSynopsis, stdout)
	r.cf.register(fs, getenv, false)
	fs.DurationVar(&r.wait, "wait", 0, "how long to wait while the lock is held by someone else")
	fs.DurationVar(&r.lifetime, "lifetime", 30*time.Second, "lock lifetime; the lock is refreshed every third of it")
	fs.DurationVar(&r.grace, "grace", 0, "time between SIGTERM and SIGKILL when the lock cannot be kept (default: a quarter of the lifetime, at most 10s)")
	host, _ := os.Hostname()
	fs.StringVar(&r.owner, "owner", fmt.Sprintf("%s pid %d", host, os.Getpid()), "label shown to readers")
	pos, command, err := parseArgs(fs, args, 1)
	switch {
	case err != nil:
		return nil, err
	case len(pos) != 1:
		return nil, errors.New("want a lock NAME")
	case len(command) == 0:
		return nil, errors.New("want a COMMAND after --")
	case r.lifetime < 100*time.Millisecond:
		return nil, errors.New("--lifetime must be at least 100ms")
	case r.grace < 0 || r.grace > r.lifetime/2:
		return nil, errors.New("--grace must be between 0 and half the lifetime")
	}
	if r.grace == 0 {
		r.grace = min(r.lifetime/4, 10*time.Second)
	}
	r.name, r.command = pos[0], command
	return r, nil
}

// killMargin is how long before the deadline the command is SIGKILLed: the
// kernel needs a moment to end the processes, and timers fire late on a
// loaded machine.
func (r *lockRun) killMargin() time.Duration { return max(r.lifetime/50, 50*time.Millisecond) }

// runUnder runs the command while l is held and returns lock's exit code.
func (r *lockRun) runUnder(l *client.Lock, stderr io.Writer) int {
	cmd := exec.Command(r.command[0], r.command[1:]...)
	cmd.Env = append(childEnv(os.Environ()), "DOUBLEDUTCH_LOCK="+l.Name(), "DOUBLEDUTCH_FENCE="+strconv.FormatUint(l.Fence(), 10))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = ownProcessGroup()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		r.release(l, stderr)
		code := exitCannotRun
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = exitNoCommand
		}
		return fail(stderr, code, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &supervisor{r: r, l: l, cmd: cmd, stderr: stderr}
	err, stopped := s.run(sigs, exited)
	r.release(l, stderr)
	if stopped {
		return exitLost
	}
	return exitStatus(err)
}

// childEnv is the environment without the API key: the command gets the
// lock's name and fencing token, not the secret that takes locks (it can
// read DOUBLEDUTCH_API_KEY_FILE if it needs one).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "DOUBLEDUTCH_API_KEY=") {
			out = append(out, kv)
		}
	}
	return out
}

// release gives the lock back, bounded: the cluster may be unreachable
// (then the lock expires at its lifetime).
func (r *lockRun) release(l *client.Lock, stderr io.Writer) {
	lostBefore := l.Err()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil && lostBefore == nil {
		fmt.Fprintln(stderr, "doubledutch lock: release:", oneLine(err))
	}
}

// supervisor watches the lock while the command runs: it forwards
// signals, and when the lock cannot be kept it sends SIGTERM, then SIGKILL
// after the grace, both before the deadline.
type supervisor struct {
	r        *lockRun
	l        *client.Lock
	cmd      *exec.Cmd
	stderr   io.Writer
	lostAt   time.Time // zero while the lock is held
	termSent bool
	killSent bool
}

// plan returns when to send SIGTERM and SIGKILL, given the current
// deadline (it only moves later, with refreshes) and a loss, if any.
func (s *supervisor) plan() (termAt, killAt time.Time) {
	killAt = s.l.Deadline().Add(-s.r.killMargin())
	termAt = killAt.Add(-s.r.grace)
	if !s.lostAt.IsZero() {
		termAt = s.lostAt
		if k := s.lostAt.Add(s.r.grace); k.Before(killAt) {
			killAt = k
		}
	}
	return termAt, killAt
}

// run supervises until the command exits; it returns the command's wait
// error and whether the command was stopped because the lock was lost.
func (s *supervisor) run(sigs <-chan os.Signal, exited <-chan error) (error, bool) {
	lost := s.l.Lost()
	for {
		termAt, killAt := s.plan()
		next := killAt
		if !s.termSent && termAt.Before(next) {
			next = termAt
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case err := <-exited:
			timer.Stop()
			// Whatever the command left running in its group would work
			// on without the lock, which is released next: kill it.
			signalGroup(s.cmd, syscall.SIGKILL)
			return err, s.termSent || s.killSent
		case sig := <-sigs:
			signalGroup(s.cmd, sig.(syscall.Signal))
		case <-lost:
			lost, s.lostAt = nil, time.Now()
			fmt.Fprintf(s.stderr, "doubledutch lock: %s\n", oneLine(s.l.Err()))
		case <-timer.C:
		}
		timer.Stop()
		s.act()
	}
}

// act sends whatever signal is due.
func (s *supervisor) act() {
	termAt, killAt := s.plan()
	now := time.Now()
	if !s.termSent && !now.Before(termAt) {
		s.termSent = true
		fmt.Fprintf(s.stderr, "doubledutch lock: cannot keep lock %s: sending the command SIGTERM (SIGKILL in %v)\n",
			s.r.name, killAt.Sub(now).Round(time.Millisecond))
		signalGroup(s.cmd, syscall.SIGTERM)
	}
	if !s.killSent && !now.Before(killAt) {
		s.killSent = true
		fmt.Fprintf(s.stderr, "doubledutch lock: sending the command SIGKILL, %v before the lock's deadline\n",
			time.Until(s.l.Deadline()).Round(time.Millisecond))
		signalGroup(s.cmd, syscall.SIGKILL)
	}
}

// exitStatus is the command's status as a shell reports it: its exit
// code, or 128 plus the signal that ended it.
func exitStatus(err error) int {
	var exitErr *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &exitErr) {
		return exitLockFailed
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exitErr.ExitCode()
}
