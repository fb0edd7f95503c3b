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
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping the dev cluster")
	var errs []error
	for i := len(nodes) - 1; i >= 0; i-- {
		errs = append(errs, nodes[i].shutdown())
	}
	return errors.Join(errs...)
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
	var voters []cluster.Server
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
		voters = append(voters, cluster.Server{ID: fmt.Sprintf("node%d", i+1), Address: r.Addr().String()})
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

func devNodeConfig(id, apiAddr, dir, key, logLevel string, voters []cluster.Server) Config {
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
	fmt.Fprintf(w, "Admin key (membership changes only): %s\n\n", adminKey)
	u := nodes[0].cfg.APIURL
	fmt.Fprintf(w, "Try (followers redirect to the leader, so use -L; curl resends a bearer key\n")
	fmt.Fprintf(w, "to another port only with --location-trusted):\n")
	fmt.Fprintf(w, "  curl -sL '%s/getlock?auth=%s&lockname=demo&lifetime=30'\n", u, key)
	fmt.Fprintf(w, "  curl -s --location-trusted -X POST -H 'Authorization: Bearer %s' -d '{\"lifetime\":30}' %s/v1/locks/demo2\n", key, u)
	fmt.Fprintf(w, "  curl -sL '%s/status?auth=%s'\n", u, key)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
