//go:build !linux

package ddtest

import (
	"os/exec"
	"time"
)

// DieWithParent: only Linux has a parent-death signal.
func DieWithParent(*exec.Cmd) {}

// waitStopped: without /proc, SIGSTOP is trusted to act at once.
func waitStopped(int, time.Duration) {}
