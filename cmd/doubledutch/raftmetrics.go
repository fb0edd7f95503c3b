package main

import (
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// bridgeRaftMetrics sends hashicorp/raft's own metrics (commit time,
// fsync, replication per peer, ...) into reg. Raft reports them through
// go-metrics' process-wide sink, which is why only serve, one node per
// process, calls this; dev mode and tests, with several nodes in one
// process, leave Raft's metrics out rather than mix them up.
func bridgeRaftMetrics(reg prometheus.Registerer) error {
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
		Registerer: reg,
		Name:       "doubledutch_raft_metrics_sink",
		Expiration: 5 * time.Minute,
	})
	if err != nil {
		return err
	}
	cfg := gometrics.DefaultConfig("")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false // the Go collector reports those
	_, err = gometrics.NewGlobal(cfg, sink)
	return err
}
