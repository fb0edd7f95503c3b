//go:build !linux

package chaos

import "syscall"

// childAttr puts a node in its own process group. (The harness needs
// Linux anyway: it binds 127.0.0.11-13, which only Linux routes to lo.)
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
