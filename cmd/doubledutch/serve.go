package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/api"
	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/cluster/tlsutil"
	"github.com/doubledutch/doubledutch/internal/buildinfo"
)

// errUsage marks a flag error whose message the flag package printed.
var errUsage = errors.New("usage")

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeArgs(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	setGCPercent(getenv)
	node, err := startNode(cfg, log, nil, nil)
	if err != nil {
		return err
	}
	if err := bridgeRaftMetrics(node.api.Registry()); err != nil {
		log.Warn("Raft's own metrics are not exported", "error", err)
	}
	log.Info("serving", "node", cfg.NodeID, "api", cfg.APIURL, "raft", node.raftAddr())
	return node.wait(ctx)
}

// serveGCPercent is the garbage collector's target for `serve` when the
// GOGC environment variable does not set one. A node's live heap is small
// next to what it allocates per request (about 10 KB per acquire+release
// pair across HTTP, Raft and the FSM), so at Go's default of 100 it
// collects every few hundred pairs; 400 lets the heap grow to five times
// the live data between collections, which measured about 10 % less CPU per pair
// at 64 workers, for a few tens of MB more memory at idle-size heaps. GOGC
// (including GOGC=off) and GOMEMLIMIT in the environment still rule.
const serveGCPercent = 400

func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

func newLogger(cfg Config, out io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "doubledutch",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogFormat == "json",
		Output:     out,
	})
}

// runningNode is one started node: Raft, the API and its HTTP server.
type runningNode struct {
	cfg     Config
	log     hclog.Logger
	cluster *cluster.Node
	api     *api.Server
	http    *http.Server
	served  chan error
}

// startNode starts the parts in dependency order. apiLn and raftLn may be
// pre-bound listeners (dev mode); nil means bind the configured addresses.
func startNode(cfg Config, log hclog.Logger, apiLn, raftLn net.Listener) (*runningNode, error) {
	if cfg.Threads > 0 {
		runtime.GOMAXPROCS(cfg.Threads)
	}
	key, err := cfg.loadAPIKey()
	if err != nil {
		return nil, err
	}
	adminKey, err := cfg.loadAdminKey()
	if err != nil {
		return nil, err
	}
	if raftLn == nil {
		if raftLn, err = cfg.bindChosenRaftPort(); err != nil {
			return nil, err
		}
	}
	apiTLS, err := cfg.apiTLS()
	if err != nil {
		return nil, err
	}
	ccfg, err := cfg.clusterConfig(log, raftLn)
	if err != nil {
		return nil, err
	}
	if apiLn == nil {
		if apiLn, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("API listener: %w", err)
		}
	}
	node, err := cluster.Start(ccfg)
	if err != nil {
		apiLn.Close()
		return nil, err
	}
	acfg := cfg.apiConfig(key)
	acfg.AdminKey = adminKey
	srv, err := api.New(acfg, node, log.Named("api"))
	if err != nil {
		apiLn.Close()
		node.Close()
		return nil, err
	}
	rn := &runningNode{cfg: cfg, log: log, cluster: node, api: srv, served: make(chan error, 1)}
	rn.http = srv.HTTPServer(apiTLS, log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}))
	// The cap counts TCP connections, before their TLS handshake.
	apiLn = srv.Listener(apiLn)
	if apiTLS != nil {
		apiLn = tls.NewListener(apiLn, apiTLS)
	}
	go func() { rn.served <- rn.http.Serve(apiLn) }()
	return rn, nil
}

// bindChosenRaftPort binds the Raft listener now when its port is chosen
// at start (port 0, the original command line), and records the real
// address in this node's bootstrap entry: the configuration used to say
// 127.0.0.1:0, an address no peer can dial. nil when the port is fixed.
func (c *Config) bindChosenRaftPort() (net.Listener, error) {
	if _, port, err := net.SplitHostPort(c.RaftBind); err != nil || port != "0" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.RaftBind)
	if err != nil {
		return nil, fmt.Errorf("raft listener: %w", err)
	}
	if c.RaftAdvertise == "" {
		for i := range c.Voters {
			if c.Voters[i].ID == c.NodeID {
				c.Voters[i].Address = ln.Addr().String()
			}
		}
	}
	return ln, nil
}

func (rn *runningNode) raftAddr() string { return rn.cluster.RaftAddr() }

// wait serves until ctx ends or the HTTP server fails, then shuts down.
func (rn *runningNode) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		rn.log.Info("shutting down")
	case err = <-rn.served:
		err = fmt.Errorf("API server: %w", err)
	}
	if serr := rn.shutdown(); err == nil {
		err = serr
	}
	return err
}

// shutdown stops in reverse order of start-up: waiting requests end with a
// retryable answer, the listener closes and in-flight requests finish,
// then the node hands leadership over and closes Raft.
func (rn *runningNode) shutdown() error {
	// Leadership first: requests waiting here are then carried to the new
	// leader by a 307 instead of being refused by api.Close.
	rn.cluster.HandOver()
	rn.api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rn.http.Shutdown(ctx); err != nil {
		rn.log.Warn("HTTP shutdown", "error", err)
		rn.http.Close()
	}
	return rn.cluster.Close()
}

func (c *Config) apiTLS() (*tls.Config, error) {
	if c.HTTP {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("HTTPS certificate %s / key %s: %w (give --tls-cert and --tls-key, or --http / 'h 0' for plain HTTP)", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tlsutil.CipherSuites(), Certificates: []tls.Certificate{cert}}, nil
}

func (c *Config) clusterConfig(log hclog.Logger, raftLn net.Listener) (cluster.Config, error) {
	cc := cluster.Config{
		NodeID:             c.NodeID,
		RaftBind:           c.RaftBind,
		RaftListener:       raftLn,
		RaftAdvertise:      c.RaftAdvertise,
		APIURL:             c.APIURL,
		DataDir:            c.DataDir,
		Voters:             c.Voters,
		TickInterval:       c.Tick,
		HeartbeatTimeout:   c.Heartbeat,
		ElectionTimeout:    c.Election,
		LeaderLeaseTimeout: c.LeaderLease,
		SnapshotInterval:   c.SnapshotInterval,
		SnapshotThreshold:  c.SnapshotThreshold,
		Logger:             log,
	}
	if c.RaftTLSCert == "" {
		return cc, nil
	}
	var err error
	if cc.RaftServerTLS, err = tlsutil.ServerConfig(c.RaftTLSCert, c.RaftTLSKey, c.RaftTLSCA); err != nil {
		return cc, fmt.Errorf("raft TLS: %w", err)
	}
	if cc.RaftClientTLS, err = tlsutil.ClientConfig(c.RaftTLSCert, c.RaftTLSKey, c.RaftTLSCA); err != nil {
		return cc, fmt.Errorf("raft TLS: %w", err)
	}
	return cc, nil
}

func (c *Config) apiConfig(key string) api.Config {
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	return api.Config{
		ServerName:     c.ServerName,
		Version:        buildinfo.Version,
		APIKey:         key,
		MaxLifetime:    c.MaxLifetime,
		MaxWait:        c.MaxWait,
		LeaderWait:     c.LeaderWait,
		MaxWaiters:     c.MaxWaiters,
		MaxConnections: c.MaxConnections,
	}
}
