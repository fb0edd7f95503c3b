//go:build !linux

package ddtest

import "os/exec"

// DieWithParent: only Linux has a parent-death signal.
func DieWithParent(*exec.Cmd) {}
