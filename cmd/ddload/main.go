// Command ddload is the load generator for a DoubleDutch cluster: lock+
// unlock pairs per second and pair latency, uncontended and contended, at
// several worker counts, in the same scenarios as the etcd reference
// benchmark kit's etcdlock (not part of this repository; the README's
// Performance section quotes its figures), so the two can be compared on
// one machine.
//
//	go run ./cmd/doubledutch dev &
//	go run ./cmd/ddload -endpoints http://127.0.0.1:8001 -key KEY -workers 1,8,64
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/client/loadgen"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:8001", "comma-separated node URLs")
	key := flag.String("key", os.Getenv("DOUBLEDUTCH_API_KEY"), "API key (default $DOUBLEDUTCH_API_KEY)")
	scenarios := flag.String("scenarios", "uncontended,contended", "comma list of: uncontended, contended")
	workers := flag.String("workers", "1,8,64", "comma list of worker counts")
	duration := flag.Duration("duration", 10*time.Second, "measured time per cell")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up per cell")
	lifetime := flag.Duration("lifetime", 10*time.Second, "lock lifetime")
	insecure := flag.Bool("insecure", false, "skip TLS certificate checks")
	mode := flag.String("mode", "bench", "bench | failover | floor (HTTP alone: a canned in-process server, no Raft)")
	killCmd := flag.String("kill-cmd", "", "failover: shell command that kills the leader (env LEADER_ENDPOINT, LEADER_NAME)")
	restartCmd := flag.String("restart-cmd", "", "failover: shell command that restarts the killed node (same env)")
	reps := flag.Int("reps", 3, "failover repetitions")
	settle := flag.Duration("settle", 3*time.Second, "failover: steady load before each kill")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		// The generator shares the cores with what it measures: collect
		// less often (its live heap is tiny), as `doubledutch serve` does.
		debug.SetGCPercent(400)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tlsConf := &tls.Config{InsecureSkipVerify: *insecure}
	if *mode == "failover" {
		cfg := failoverClientConfig(client.Config{Endpoints: strings.Split(*endpoints, ","), APIKey: *key, TLS: tlsConf}, 30*time.Second)
		c, err := client.NewClient(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddload:", err)
			os.Exit(2)
		}
		w, _ := strconv.Atoi(strings.Split(*workers, ",")[0])
		err = runFailover(ctx, c, failoverConfig{endpoints: strings.Split(*endpoints, ","), workers: max(w, 1), reps: *reps,
			settle: *settle, maxWait: 30 * time.Second, killCmd: *killCmd, restartCmd: *restartCmd, lifetime: *lifetime})
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddload:", err)
			os.Exit(1)
		}
		return
	}
	if *mode == "floor" {
		ws, err := workerCounts(*workers)
		if err == nil {
			fmt.Println("| scenario | workers | pairs/s | pair p50 | pair p99 | errors |")
			fmt.Println("|---|---|---|---|---|---|")
			err = runFloor(ctx, ws, *warmup, *duration)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddload:", err)
			os.Exit(1)
		}
		return
	}
	target := loadgen.Target{Endpoints: strings.Split(*endpoints, ","), Key: *key, TLS: tlsConf}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	fmt.Println("| scenario | workers | pairs/s | pair p50 | pair p99 | errors |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, sc := range strings.Split(*scenarios, ",") {
		ws, err := workerCounts(*workers)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ddload:", err)
			os.Exit(2)
		}
		for _, w := range ws {
			cell := loadgen.Cell{Scenario: sc, Workers: w, Warmup: *warmup, Duration: *duration, Lifetime: *lifetime}
			r, err := loadgen.Run(ctx, target, cell, run)
			if err != nil {
				fmt.Fprintln(os.Stderr, "ddload:", err)
				os.Exit(1)
			}
			fmt.Println(r)
		}
	}
}

// workerCounts parses the -workers list.
func workerCounts(list string) ([]int, error) {
	var out []int
	for _, ws := range strings.Split(list, ",") {
		w, err := strconv.Atoi(ws)
		if err != nil || w < 1 {
			return nil, fmt.Errorf("bad worker count %q", ws)
		}
		out = append(out, w)
	}
	return out, nil
}
