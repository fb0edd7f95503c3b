package ddtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// DieWithParent makes the kernel kill cmd (a node, say) when the test binary dies
// (a panic or a test timeout skips every cleanup): nothing is left behind.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// waitStopped waits, up to timeout, until the kernel reports process pid
// stopped: a signal is delivered asynchronously, and a test that froze a
// node must not race a request past the freeze.
func waitStopped(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) && data[i+2] == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
