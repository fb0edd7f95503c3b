//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts the command in its own process group, so that
// failing closed stops every process it started, not only the first (a
// shell's children would otherwise keep working on the resource).
func ownProcessGroup() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(attr)
	return attr
}

// signalGroup sends sig to the command's whole process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}
