//go:build !unix

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup: without process groups only the command itself is
// signalled.
func ownProcessGroup() *syscall.SysProcAttr { return nil }

// signalGroup sends sig to the command.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}
