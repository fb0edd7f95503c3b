package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/doubledutch/doubledutch/api"
	"github.com/doubledutch/doubledutch/cluster"
)

// Config is everything `doubledutch serve` needs, parsed from flags, the
// DOUBLEDUTCH_* environment and the original positional form.
type Config struct {
	NodeID        string
	Listen        string // API listen address
	APIURL        string // advertised API URL
	RaftBind      string
	RaftAdvertise string
	Voters        []cluster.Voter
	Join          bool // wait to be added instead of bootstrapping
	// Legacy is set by the original positional command line, which is
	// explicitly a single node: it bootstraps alone without --voters.
	Legacy  bool
	DataDir string

	HTTP        bool // plain HTTP instead of HTTPS
	TLSCert     string
	TLSKey      string
	RaftTLSCert string
	RaftTLSKey  string
	RaftTLSCA   string

	APIKey       string
	APIKeyFile   string
	AdminKey     string
	AdminKeyFile string
	ServerName   string

	Tick              time.Duration
	Heartbeat         time.Duration
	Election          time.Duration
	LeaderLease       time.Duration
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	MaxLifetime       time.Duration
	MaxWait           time.Duration
	LeaderWait        time.Duration
	MaxWaiters        int
	MaxConnections    int
	Threads           int

	LogLevel  string
	LogFormat string
}

// envPrefix starts every environment variable that sets a flag: the flag
// --raft-bind is DOUBLEDUTCH_RAFT_BIND.
const envPrefix = "DOUBLEDUTCH_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet declares every serve flag on cfg's fields.
func newFlagSet(cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("doubledutch", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.NodeID, "node-id", "node1", "unique id of this node (letters, digits, '.', '_', '-'; at most 64)")
	fs.StringVar(&cfg.Listen, "listen", ":8000", "address the client API listens on")
	fs.StringVar(&cfg.APIURL, "api-url", "", "API URL clients use to reach this node (default: derived from --listen)")
	fs.StringVar(&cfg.RaftBind, "raft-bind", "127.0.0.1:7000", "address the Raft transport listens on")
	fs.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address peers dial, if different from --raft-bind")
	fs.Func("voters", "bootstrap voter list id=host:port,... (the same on every node, this node included; required unless --join)", func(s string) error {
		v, err := parseVoters(s)
		cfg.Voters = v
		return err
	})
	fs.BoolVar(&cfg.Join, "join", false, "start without bootstrapping and wait to be added (PUT /v1/cluster/nodes/ID on the leader)")
	fs.StringVar(&cfg.DataDir, "data-dir", "doubledutch-data", "directory for the Raft log and snapshots")
	fs.BoolVar(&cfg.HTTP, "http", false, "serve plain HTTP instead of HTTPS (the original's 'h 0')")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "/certificate.crt", "API TLS certificate (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "/privateKey.key", "API TLS private key (PEM)")
	fs.StringVar(&cfg.RaftTLSCert, "raft-tls-cert", "", "Raft mutual-TLS certificate (PEM); with key and CA turns Raft TLS on")
	fs.StringVar(&cfg.RaftTLSKey, "raft-tls-key", "", "Raft mutual-TLS private key (PEM)")
	fs.StringVar(&cfg.RaftTLSCA, "raft-tls-ca", "", "CA that signs every node's Raft certificate (PEM)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API key clients must present (prefer --api-key-file or the environment)")
	fs.StringVar(&cfg.APIKeyFile, "api-key-file", "/config.txt", "file whose first line is the API key (used when --api-key is empty)")
	fs.StringVar(&cfg.AdminKey, "admin-key", "", "key of the admin endpoints (membership, transfer-leader, backup); must differ from the API key (prefer --admin-key-file)")
	fs.StringVar(&cfg.AdminKeyFile, "admin-key-file", "", "file whose first line is the admin key (default: none, admin endpoints disabled)")
	fs.StringVar(&cfg.ServerName, "name", "", "server name reported in responses (default DoubleDutch/<version>)")
	fs.DurationVar(&cfg.Tick, "tick", 333*time.Millisecond, "safety-net expiry tick while locks are held (the original's precision)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat-timeout", cluster.DefaultHeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&cfg.Election, "election-timeout", cluster.DefaultElectionTimeout, "Raft election timeout")
	fs.DurationVar(&cfg.LeaderLease, "leader-lease-timeout", cluster.DefaultLeaderLeaseTimeout, "Raft leader lease timeout")
	fs.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cluster.DefaultSnapshotInterval, "how often Raft checks whether to snapshot")
	fs.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", 8192, "log entries since the last snapshot that trigger a new one")
	fs.DurationVar(&cfg.MaxLifetime, "max-lifetime", 30*24*time.Hour, "longest lock lifetime a client may ask for")
	fs.DurationVar(&cfg.MaxWait, "max-wait", 10*time.Minute, "longest time a client may wait for a lock")
	fs.DurationVar(&cfg.LeaderWait, "leader-wait", api.DefaultLeaderWait, "how long a request waits for a leader while none is known (election, failover) before 503")
	fs.IntVar(&cfg.MaxWaiters, "max-waiters", 100000, "most requests that may wait for locks at once")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "most client connections served at once; more wait in the accept queue (0: derived from the descriptor limit)")
	fs.IntVar(&cfg.Threads, "threads", 0, "CPU threads to use (0: all; the original's 't')")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	return fs
}

// parseServeArgs reads the environment, then flags, then (if the first
// argument is a port number) the original positional form
// `PORT [n NAME] [p MS] [t THREADS] [h 0] [a KEY] [d DATADIR]`.
func parseServeArgs(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var cfg Config
	fs := newFlagSet(&cfg, out)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if len(args) > 0 && isPort(args[0]) {
		rest, err := applyLegacyArgs(&cfg, args)
		if err != nil {
			return cfg, err
		}
		args = rest
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, cfg.Validate()
}

func isPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p > 0 && p < 65536
}

// applyLegacyArgs reads the original DoubleDutch command line. Every value
// is taken as text first, so numeric names and keys work (the original
// mis-parsed them). Flags may follow the pairs.
func applyLegacyArgs(cfg *Config, args []string) ([]string, error) {
	cfg.Listen = ":" + args[0]
	cfg.RaftBind = "127.0.0.1:0"
	cfg.Legacy = true
	args = args[1:]
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if len(args) < 2 {
			return nil, fmt.Errorf("option %q needs a value", args[0])
		}
		key, val := args[0], args[1]
		args = args[2:]
		switch key {
		case "n":
			cfg.ServerName = val
		case "p":
			ms, err := strconv.ParseFloat(val, 64)
			if err != nil || ms <= 0 || ms > 60_000 || math.IsNaN(ms) {
				return nil, fmt.Errorf("p (precision) must be milliseconds between 0 and 60000, got %q", val)
			}
			cfg.Tick = time.Duration(ms * float64(time.Millisecond))
		case "t":
			t, err := strconv.Atoi(val)
			if err != nil || t < 1 || t > 4096 {
				return nil, fmt.Errorf("t (threads) must be a whole number from 1 to 4096, got %q", val)
			}
			cfg.Threads = t
		case "h":
			if val != "0" && val != "1" {
				return nil, fmt.Errorf("h must be 0 (plain HTTP) or 1 (HTTPS), got %q", val)
			}
			cfg.HTTP = val == "0"
		case "a":
			cfg.APIKey = val
		case "d":
			cfg.DataDir = val
		default:
			return nil, fmt.Errorf("unknown option %q (want n, p, t, h, a or d)", key)
		}
	}
	return args, nil
}

// parseVoters reads "id=host:port,id=host:port".
func parseVoters(s string) ([]cluster.Voter, error) {
	var out []cluster.Voter
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("voter %q: want id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("voter %q: %w", part, err)
		}
		out = append(out, cluster.Voter{ID: id, Address: addr})
	}
	return out, nil
}

// Validate fills derived defaults and reports the first problem.
func (c *Config) Validate() error {
	if !api.ValidNodeID(c.NodeID) {
		return fmt.Errorf("--node-id %q must be 1 to 64 letters, digits, '.', '_' or '-'", c.NodeID)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if c.APIURL == "" {
		c.APIURL = c.defaultAPIURL()
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--api-url %q must be an http or https URL", c.APIURL)
	}
	if c.Join && len(c.Voters) > 0 {
		return errors.New("--join and --voters exclude each other: a joining node is added by the leader")
	}
	if len(c.Voters) == 0 && !c.Join && !c.Legacy {
		// A node that bootstrapped alone by default would, misconfigured
		// with an empty data directory, elect itself and grant locks that
		// the real cluster knows nothing of.
		return errors.New("give --voters (every voter, this node included; for a single node e.g. --voters " +
			c.NodeID + "=127.0.0.1:7000) or --join")
	}
	if len(c.Voters) == 0 && !c.Join {
		addr := c.RaftAdvertise
		if addr == "" {
			addr = c.RaftBind
		}
		c.Voters = []cluster.Voter{{ID: c.NodeID, Address: addr}}
	}
	raftTLS := []string{c.RaftTLSCert, c.RaftTLSKey, c.RaftTLSCA}
	if n := countSet(raftTLS); n != 0 && n != 3 {
		return errors.New("raft TLS needs all of --raft-tls-cert, --raft-tls-key and --raft-tls-ca")
	}
	switch {
	case c.Tick <= 0:
		return errors.New("--tick must be positive")
	case c.LeaderWait < 0:
		return errors.New("--leader-wait must not be negative")
	case c.MaxLifetime <= 0 || c.MaxWait < 0 || c.MaxWaiters < 0 || c.MaxConnections < 0:
		return errors.New("--max-lifetime must be positive; --max-wait, --max-waiters and --max-connections must not be negative")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	return nil
}

func (c *Config) defaultAPIURL() string {
	host, port, _ := net.SplitHostPort(c.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "https"
	if c.HTTP {
		scheme = "http"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func countSet(vals []string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// loadAPIKey returns the key from --api-key or else the first line of the
// key file. A missing default key file is not an error only when a key was
// given directly.
func (c *Config) loadAPIKey() (string, error) {
	if c.APIKey != "" {
		return c.APIKey, nil
	}
	key, err := readKeyFile(c.APIKeyFile)
	if err != nil {
		return "", fmt.Errorf("API key: give --api-key, %s, or a key file (%w)", envName("api-key"), err)
	}
	return key, nil
}

// loadAdminKey returns the admin key, or "" (admin endpoints disabled)
// when neither --admin-key nor --admin-key-file is given.
func (c *Config) loadAdminKey() (string, error) {
	if c.AdminKey != "" || c.AdminKeyFile == "" {
		return c.AdminKey, nil
	}
	key, err := readKeyFile(c.AdminKeyFile)
	if err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	return key, nil
}

// readKeyFile returns the first line of a key file with surrounding white
// space trimmed: an editor's trailing space or a Windows line end would
// otherwise become part of a key no client could present in a header.
func readKeyFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	key := strings.TrimSpace(line)
	if key == "" {
		return "", fmt.Errorf("key file %s has an empty first line", path)
	}
	return key, nil
}
