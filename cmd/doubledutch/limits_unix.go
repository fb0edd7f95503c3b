//go:build unix

package main

import "syscall"

// fdReserve is left for Raft (peer connections, raft.db, snapshots) and
// the rest of the process when the connection cap is derived from the
// descriptor limit.
const fdReserve = 128

// defaultMaxConnections derives the API connection cap from the process's
// descriptor limit (Go raises the soft limit to the hard one at start), so
// that a flood of connections queues in the kernel instead of making
// accept fail with "too many open files" and starving Raft of descriptors.
func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return capFromLimit(lim.Cur)
}
