//go:build ddbroken

package cluster

import (
	"os"
	"strconv"
	"time"
)

// A DELIBERATELY BROKEN build, only for proving that the chaos checker
// (scripts/chaos) catches early expiry: with -tags ddbroken the leader's
// lease clock runs DOUBLEDUTCH_BROKEN_RATE times as fast as real time
// (default 3), so locks expire after a fraction of their lifetime and a
// new leader jumps the clock ahead by the skew it has built up since the
// process started. Never ship this build.

var (
	brokenStart = time.Now()
	brokenRate  = brokenRateFromEnv()
)

func brokenRateFromEnv() float64 {
	r, err := strconv.ParseFloat(os.Getenv("DOUBLEDUTCH_BROKEN_RATE"), 64)
	if err != nil || r < 1 {
		return 3
	}
	return r
}

// brokenClockSkew replaces the zero skew of clock_sound.go: the extra
// time a clock running brokenRate times too fast has gained since start.
func brokenClockSkew() time.Duration {
	return time.Duration(float64(time.Since(brokenStart)) * (brokenRate - 1))
}
