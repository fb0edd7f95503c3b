package client_test

import (
	"os"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// measureTune configures the measured client: the defaults, or the
// HedgeAfter in DDTEST_HEDGE_AFTER (e.g. -1s: no hedging).
func measureTune(cfg *client.Config) {
	if d, err := time.ParseDuration(os.Getenv("DDTEST_HEDGE_AFTER")); err == nil {
		cfg.HedgeAfter = d
	}
}
