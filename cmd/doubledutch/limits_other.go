//go:build !unix

package main

const fdReserve = 128

// defaultMaxConnections is a fixed cap where the descriptor limit cannot
// be read.
func defaultMaxConnections() int { return 4096 }
