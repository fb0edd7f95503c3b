package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// failoverConfig drives the failover mode: load on the cluster, the leader
// killed by killCmd (env LEADER_ENDPOINT, LEADER_NAME), the time from the
// kill to the next successful grant, the member restarted by restartCmd.
type failoverConfig struct {
	endpoints           []string
	workers, reps       int
	settle, maxWait     time.Duration
	killCmd, restartCmd string
	lifetime            time.Duration
}

// runFailover prints one table row per repetition. c should retry for
// fc.maxWait with short attempts (see failoverClientConfig).
func runFailover(ctx context.Context, c *client.Client, fc failoverConfig) error {
	fmt.Printf("# ddload failover workers=%d reps=%d\n", fc.workers, fc.reps)
	fmt.Println("| rep | killed | first grant ms | errors |")
	fmt.Println("|---|---|---|---|")
	for rep := 1; rep <= fc.reps; rep++ {
		ms, killed, errs, err := failoverOnce(ctx, c, fc, rep)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %s | %.0f | %d |\n", rep, killed, ms, errs)
	}
	return nil
}

func failoverOnce(ctx context.Context, c *client.Client, fc failoverConfig, rep int) (float64, string, int64, error) {
	var (
		killedAt  atomic.Int64 // unix ns; 0 before the kill
		firstDone atomic.Int64 // unix ns of the first grant after the kill
		errs      atomic.Int64
		wg        sync.WaitGroup
	)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	for w := 0; w < fc.workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("failover-%d-%d-%d", os.Getpid(), rep, w)
			for lctx.Err() == nil {
				started := time.Now().UnixNano()
				l, err := c.Acquire(lctx, name, client.AcquireOptions{Lifetime: fc.lifetime})
				if err != nil {
					errs.Add(1)
					continue
				}
				// Only a call sent after the kill shows the new leader
				// serving; one in flight may have committed before.
				if k := killedAt.Load(); k != 0 && started > k {
					firstDone.CompareAndSwap(0, time.Now().UnixNano())
				}
				_ = c.Release(lctx, name, l.Token(), "")
			}
		}(w)
	}
	time.Sleep(fc.settle)
	ep, name, err := findLeader(fc.endpoints)
	if err != nil {
		return 0, "", 0, err
	}
	env := append(os.Environ(), "LEADER_ENDPOINT="+ep, "LEADER_NAME="+name)
	// The clock starts when the kill command has returned (kill -9 has
	// then been delivered): started before, a call sent while the shell
	// was still starting could be granted by the old leader and count as
	// a failover of a few milliseconds.
	if err := runCmd(fc.killCmd, env); err != nil {
		return 0, "", 0, fmt.Errorf("kill command: %w", err)
	}
	killedAt.Store(time.Now().UnixNano())
	deadline := time.Now().Add(fc.maxWait)
	for firstDone.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	if err := runCmd(fc.restartCmd, env); err != nil {
		return 0, "", 0, fmt.Errorf("restart command: %w", err)
	}
	if firstDone.Load() == 0 {
		return -1, name, errs.Load(), nil
	}
	return float64(firstDone.Load()-killedAt.Load()) / 1e6, name, errs.Load(), nil
}

func runCmd(cmd string, env []string) error {
	if cmd == "" {
		return nil
	}
	c := exec.Command("sh", "-c", cmd)
	c.Env, c.Stdout, c.Stderr = env, os.Stderr, os.Stderr
	return c.Run()
}

// findLeader asks each node's /v1/health which node leads.
func findLeader(endpoints []string) (endpoint, nodeID string, err error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	for i := 0; i < 100; i++ {
		for _, ep := range endpoints {
			resp, err := hc.Get(ep + "/v1/health")
			if err != nil {
				continue
			}
			var h struct {
				NodeID   string `json:"node_id"`
				IsLeader bool   `json:"is_leader"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.IsLeader {
				return ep, h.NodeID, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", "", fmt.Errorf("no node reports itself leader")
}

// failoverClientConfig tunes cfg for a failover run: a call keeps
// retrying through the election for maxWait, each attempt short.
func failoverClientConfig(cfg client.Config, maxWait time.Duration) client.Config {
	cfg.RetryFor, cfg.AttemptTimeout = maxWait, 2*time.Second
	return cfg
}
