package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
)

// devCommand runs a three-node cluster in this process on 127.0.0.1, with
// plain HTTP, fresh temporary data and a random API key, in the spirit of
// `consul agent -dev`. Nothing persists after it exits unless --data-dir.
func devCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 8001, "API port of the first node; the others use the next two, Raft uses these minus 1000")
	dataDir := fs.String("data-dir", "", "keep the nodes' data here instead of a temporary directory")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *port < 1001 || *port > 65533 {
		return fmt.Errorf("--port must be between 1001 and 65533")
	}
	dir, cleanup, err := devDataDir(*dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	key, adminKey := randomKey(), randomKey()
	nodes, err := startDevNodes(*port, dir, key, adminKey, *logLevel, stderr)
	if err != nil {
		return err
	}
	printDevBanner(stdout, nodes, key, adminKey)
	ctx, stopWatch := exitWithParent(ctx, parentPollInterval)
	defer stopWatch()
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the dev cluster")
	err = stopDevNodes(nodes)
	if err == nil {
		fmt.Fprintln(stdout, "stopped")
	}
	return err
}

// stopDevNodes is a planned shutdown of the whole cluster. Whatever the
// order, the last nodes up see their peers vanish, and Raft logs that as
// errors (failed appendEntries, connection refused, stepping down) that
// look like a crash. Nothing is wrong, so each node's logging is switched
// off once its API has stopped taking requests; a real failure still
// surfaces as the error returned here.
func stopDevNodes(nodes []*runningNode) error {
	var errs []error
	for _, n := range nodes {
		n.api.Close() // waiting requests end with a retryable answer
	}
	for _, n := range nodes {
		n.log.SetLevel(hclog.Off)
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		errs = append(errs, nodes[i].shutdown())
	}
	return errors.Join(errs...)
}

// parentPollInterval is how often dev checks that its parent is alive.
const parentPollInterval = 500 * time.Millisecond

// exitWithParent returns a context that also ends when this process's
// parent goes away (the process is re-parented, so its parent pid
// changes). `go run` does not pass on a signal sent to it, so a dev
// cluster started by `go run ... &` would otherwise outlive a kill of the
// go command that started it.
func exitWithParent(ctx context.Context, every time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	parent := os.Getppid()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

func devDataDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o700)
	}
	tmp, err := os.MkdirTemp("", "doubledutch-dev-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

func randomKey() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// startDevNodes binds every port first, so the three nodes share one voter
// list, then starts them.
func startDevNodes(port int, dir, key, adminKey, logLevel string, logOut io.Writer) ([]*runningNode, error) {
	var apiLns, raftLns []net.Listener
	var voters []cluster.Voter
	closeAll := func() {
		for _, l := range append(apiLns, raftLns...) {
			l.Close()
		}
	}
	for i := 0; i < 3; i++ {
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+i))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dev node %d: %w (choose other ports with --port)", i+1, err)
		}
		apiLns = append(apiLns, a)
		r, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+i-1000))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dev node %d raft: %w (choose other ports with --port)", i+1, err)
		}
		raftLns = append(raftLns, r)
		voters = append(voters, cluster.Voter{ID: fmt.Sprintf("node%d", i+1), Address: r.Addr().String()})
	}
	var nodes []*runningNode
	for i := 0; i < 3; i++ {
		cfg := devNodeConfig(voters[i].ID, apiLns[i].Addr().String(), dir, key, logLevel, voters)
		cfg.AdminKey = adminKey
		n, err := startNode(cfg, newLogger(cfg, logOut).Named(cfg.NodeID), apiLns[i], raftLns[i])
		if err != nil {
			for _, started := range nodes {
				started.shutdown()
			}
			closeAll()
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func devNodeConfig(id, apiAddr, dir, key, logLevel string, voters []cluster.Voter) Config {
	var cfg Config
	newFlagSet(&cfg, io.Discard) // the serve defaults
	cfg.NodeID = id
	cfg.Listen = apiAddr
	cfg.HTTP = true
	cfg.APIKey = key
	cfg.DataDir = filepath.Join(dir, id)
	cfg.Voters = voters
	cfg.LogLevel = logLevel
	cfg.Heartbeat, cfg.Election, cfg.LeaderLease = devRaftTimeouts()
	_ = cfg.Validate() // derives the API URL; the values above are valid
	return cfg
}

func printDevBanner(w io.Writer, nodes []*runningNode, key, adminKey string) {
	fmt.Fprintln(w, "DoubleDutch dev cluster: three nodes on 127.0.0.1, plain HTTP, data deleted on exit.")
	for _, n := range nodes {
		fmt.Fprintf(w, "  %s  %s\n", n.cfg.NodeID, n.cfg.APIURL)
	}
	fmt.Fprintf(w, "API key: %s\n", key)
	fmt.Fprintf(w, "Admin key (membership, transfer-leader, backup): %s\n\n", adminKey)
	u := nodes[0].cfg.APIURL
	fmt.Fprintf(w, "Try (followers redirect to the leader, so use -L; curl resends a bearer key\n")
	fmt.Fprintf(w, "to another port only with --location-trusted):\n")
	fmt.Fprintf(w, "  curl -sL '%s/getlock?auth=%s&lockname=demo&lifetime=30'\n", u, key)
	fmt.Fprintf(w, "  curl -s --location-trusted -X POST -H 'Authorization: Bearer %s' -d '{\"lifetime\":30}' %s/v1/locks/demo2\n", key, u)
	fmt.Fprintf(w, "  curl -sL '%s/status?auth=%s'\n", u, key)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
