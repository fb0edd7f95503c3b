package main

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL the command if
// `doubledutch lock` itself dies (kill -9): nothing would stop it before
// the lock expired otherwise.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
