//go:build !ddbroken

package cluster

import "time"

// brokenClockSkew is zero in every real build. The chaos tests build a
// deliberately broken server with -tags ddbroken, whose version of this
// function skews the leader's clock, to prove their checker catches early
// expiry.
func brokenClockSkew() time.Duration { return 0 }
