//go:build !unix

package cluster

import "errors"

// diskSpace is not measured on this platform.
func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("cluster: free disk space is not measured on this platform")
}
