package client_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// Built once per test binary run by TestMain.
var (
	binary string
	// exampleEndpoints and exampleKey are a running three-node cluster
	// for the examples.
	exampleEndpoints []string
	exampleKey       = ddtest.Key
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = ddtest.BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := ddtest.Launch(binary, dir)
	if c != nil {
		defer c.Close()
	}
	if err == nil {
		_, err = c.WaitLeader(30 * time.Second)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "example cluster:", err)
		if c != nil {
			fmt.Fprintln(os.Stderr, c.LogTails())
		}
		return 1
	}
	exampleEndpoints = c.URLs()
	return m.Run()
}
