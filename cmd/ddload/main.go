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
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := client.NewClient(client.Config{Endpoints: strings.Split(*endpoints, ","), APIKey: *key,
		TLS: &tls.Config{InsecureSkipVerify: *insecure}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ddload:", err)
		os.Exit(2)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	fmt.Println("| scenario | workers | pairs/s | pair p50 | pair p99 | errors |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, sc := range strings.Split(*scenarios, ",") {
		for _, ws := range strings.Split(*workers, ",") {
			w, err := strconv.Atoi(ws)
			if err != nil || w < 1 {
				fmt.Fprintf(os.Stderr, "ddload: bad worker count %q\n", ws)
				os.Exit(2)
			}
			cell := loadgen.Cell{Scenario: sc, Workers: w, Warmup: *warmup, Duration: *duration, Lifetime: *lifetime}
			r, err := loadgen.Run(ctx, c, cell, run)
			if err != nil {
				fmt.Fprintln(os.Stderr, "ddload:", err)
				os.Exit(1)
			}
			fmt.Println(r)
		}
	}
}
