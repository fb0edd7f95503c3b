package ddtest

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes the kernel kill cmd (a node, say) when the test binary dies
// (a panic or a test timeout skips every cleanup): nothing is left behind.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
