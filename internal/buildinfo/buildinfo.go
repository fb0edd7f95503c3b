// Package buildinfo is the release stamp of the binaries. It is set at
// link time and read only by cmd, which passes it on (for example to
// api.Config.Version); no library package reads it.
package buildinfo

// Version is the release. Set it at link time:
//
//	go build -ldflags "-X github.com/doubledutch/doubledutch/internal/buildinfo.Version=1.2.3" ./cmd/doubledutch
var Version = "0.1.0"
