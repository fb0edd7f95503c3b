package chaos

import "syscall"

// childAttr puts a node in its own process group, so a terminal's Ctrl-C
// reaches only the harness (which then kills it), and has the kernel kill
// it if the harness dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
