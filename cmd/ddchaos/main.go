// Command ddchaos runs the DoubleDutch chaos harness (package
// scripts/chaos): a three-node cluster of real processes under a seeded
// fault schedule, with every client operation recorded and checked.
// It exits 1 when the run finds a violation. scripts/chaos.sh wraps it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/doubledutch/doubledutch/scripts/chaos"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg chaos.Config
	var faults string
	var keep, quiet bool
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to inject faults")
	flag.Int64Var(&cfg.Seed, "seed", time.Now().UnixNano()%100000, "seed of the fault schedule and the clients")
	flag.StringVar(&faults, "faults", "all", "comma-separated fault kinds: kill,stop,partition,bridge,restart,churn,client-pause,wipe,disk-loss")
	flag.IntVar(&cfg.Workload.Clients, "clients", 8, "number of clients")
	flag.IntVar(&cfg.LegacyClients, "legacy-clients", 4, "raw-HTTP clients of the original API, without retries, measured beside the workload (negative: none)")
	flag.DurationVar(&cfg.Workload.AttemptTimeout, "attempt-timeout", 2500*time.Millisecond,
		"client timeout of one attempt beyond its wait (shorter: more unknown outcomes and retries)")
	flag.StringVar(&cfg.Bin, "bin", "", "prebuilt doubledutch binary (default: go build it)")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory for data, logs and reports (default: a new temp dir)")
	flag.BoolVar(&cfg.Broken, "broken", false, "run the deliberately broken server (-tags ddbroken): the run must fail")
	flag.Float64Var(&cfg.BrokenRate, "broken-rate", 3, "with --broken: how many times too fast the leader's lease clock runs")
	flag.DurationVar(&cfg.RecoveryBound, "recovery-bound", 20*time.Second, "bound on recovery once faults stop")
	flag.DurationVar(&cfg.FailoverBound, "failover-bound", 5*time.Second, "bound on a dead holder's lock outliving its lifetime across a leader crash")
	flag.BoolVar(&keep, "keep", false, "keep the work directory even when the run passes")
	flag.BoolVar(&quiet, "quiet", false, "print only the report")
	flag.Parse()
	var err error
	if cfg.Faults, err = chaos.ParseFaults(faults); err != nil {
		fmt.Fprintln(os.Stderr, "ddchaos:", err)
		return 2
	}
	if !quiet {
		cfg.Log = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddchaos:", err)
		return 2
	}
	fmt.Print(report)
	if !report.Failed() && !keep && cfg.Dir == "" {
		_ = os.RemoveAll(report.Dir)
		fmt.Println("(work dir removed; --keep keeps it)")
	}
	if report.Failed() {
		return 1
	}
	return 0
}
