package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/doubledutch/doubledutch/cluster"
	"github.com/doubledutch/doubledutch/cluster/tlsutil"
	"github.com/doubledutch/doubledutch/internal/ddtest"
	"github.com/doubledutch/doubledutch/internal/testlog"
)

const (
	testKey      = "e2e-test-key"
	testAdminKey = "e2e-admin-key" // membership, transfer, backup
)

// e2eCluster is three real nodes (Raft over loopback TCP, the API over
// real HTTP) wired exactly as `doubledutch serve` wires them.
type e2eCluster struct {
	t       testing.TB
	nodes   []*runningNode
	urls    []string
	tlsConf *tls.Config
	client  *http.Client // does not follow redirects
	follow  *http.Client // follows redirects
	// raftProxies, with e2eOptions.raftProxies, stand in front of each
	// node's Raft port: every Raft connection to node i goes through
	// raftProxies[i], so a test can cut what node i answers, or cut node
	// k's connections to it (node k dials from raftIP(k)).
	raftProxies []*ddtest.Proxy
}

// e2eOptions varies the cluster startE2EClusterWith starts.
type e2eOptions struct {
	tls         bool // the API is HTTPS with a generated CA
	raftProxies bool // Raft traffic goes through ddtest proxies
	// heartbeat, election and lease replace the harness's Raft timeouts
	// when heartbeat is set.
	heartbeat, election, lease time.Duration
	leaderWait                 time.Duration // replaces --leader-wait's default when set
}

// startE2ECluster starts three nodes; with useTLS the API is HTTPS with a
// generated CA that the test clients verify.
func startE2ECluster(t testing.TB, useTLS bool) *e2eCluster {
	t.Helper()
	return startE2EClusterWith(t, e2eOptions{tls: useTLS})
}

// startE2EClusterWith starts three nodes as opts says.
func startE2EClusterWith(t testing.TB, opts e2eOptions) *e2eCluster {
	t.Helper()
	useTLS := opts.tls
	dir := t.TempDir()
	var tlsConf *tls.Config
	if useTLS {
		if err := tlsutil.WriteBundle(filepath.Join(dir, "certs"), tlsutil.ParseNodes("node1,node2,node3"), tlsutil.BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		tlsConf = &tls.Config{RootCAs: loadCA(t, filepath.Join(dir, "certs", tlsutil.CACertFile))}
	}
	var apiLns, raftLns []net.Listener
	var voters []cluster.Voter
	for i := 0; i < 3; i++ {
		apiLns = append(apiLns, listen(t))
		if opts.raftProxies {
			// Its own loopback IP, which its Raft dials leave from too
			// (cluster's dialSource): a proxy tells the dialing node apart.
			raftLns = append(raftLns, listenOn(t, raftIP(i)))
		} else {
			raftLns = append(raftLns, listen(t))
		}
		voters = append(voters, cluster.Voter{ID: fmt.Sprintf("node%d", i+1), Address: raftLns[i].Addr().String()})
	}
	ec := &e2eCluster{t: t, tlsConf: tlsConf}
	if opts.raftProxies {
		for i := range voters {
			p, err := ddtest.NewProxy(voters[i].Address)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close) // after the nodes' shutdown (cleanups run last first)
			ec.raftProxies = append(ec.raftProxies, p)
			voters[i].Address = p.Addr()
		}
	}
	sink := testlog.Writer(t) // stops after the cleanup below shut the nodes down
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 1100}
	ec.client = &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ec.follow = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		for _, n := range ec.nodes {
			n.shutdown()
		}
	})
	for i := 0; i < 3; i++ {
		cfg := devNodeConfig(voters[i].ID, apiLns[i].Addr().String(), dir, testKey, "warn", voters)
		cfg.AdminKey = testAdminKey
		// Longer than the serve defaults: the race detector and 1000
		// concurrent clients on two cores can starve a 250 ms leader lease.
		cfg.Heartbeat, cfg.Election, cfg.LeaderLease = time.Second, time.Second, 500*time.Millisecond
		if opts.heartbeat > 0 {
			cfg.Heartbeat, cfg.Election, cfg.LeaderLease = opts.heartbeat, opts.election, opts.lease
		}
		if opts.raftProxies {
			cfg.RaftAdvertise = voters[i].Address
		}
		if opts.leaderWait > 0 {
			cfg.LeaderWait = opts.leaderWait
		}
		if useTLS {
			cfg.HTTP = false
			cfg.TLSCert = filepath.Join(dir, "certs", cfg.NodeID+".crt")
			cfg.TLSKey = filepath.Join(dir, "certs", cfg.NodeID+".key")
			cfg.APIURL = "https://" + apiLns[i].Addr().String()
		}
		logger := hclog.New(&hclog.LoggerOptions{Name: cfg.NodeID, Level: hclog.Warn, Output: sink})
		n, err := startNode(cfg, logger, apiLns[i], raftLns[i])
		if err != nil {
			t.Fatal(err)
		}
		ec.nodes = append(ec.nodes, n)
		ec.urls = append(ec.urls, cfg.APIURL)
	}
	ec.leader()
	return ec
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func listenOn(t testing.TB, ip string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// raftIP is node i's own loopback IP in a cluster with Raft proxies.
func raftIP(i int) string { return fmt.Sprintf("127.0.0.%d", i+1) }

func loadCA(t testing.TB, path string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate")
	}
	return pool
}

// leader waits until one node leads and every node knows its API URL, and
// returns its index.
func (ec *e2eCluster) leader() int {
	ec.t.Helper()
	idx := -1
	waitUntil(ec.t, 15*time.Second, "a leader known to every node", func() bool {
		idx = -1
		for i, n := range ec.nodes {
			if n.cluster.IsLeader() {
				idx = i
			}
		}
		if idx < 0 {
			return false
		}
		for _, n := range ec.nodes {
			if n.cluster.Leader().APIURL != ec.urls[idx] {
				return false
			}
		}
		return true
	})
	return idx
}

func (ec *e2eCluster) followers() []int {
	l := ec.leader()
	var out []int
	for i := range ec.nodes {
		if i != l {
			out = append(out, i)
		}
	}
	return out
}

// do sends a request and decodes the JSON answer into a map.
func (ec *e2eCluster) do(c *http.Client, method, url string, body io.Reader, header ...string) (int, map[string]any, http.Header) {
	ec.t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		ec.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		ec.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(data) > 0 && resp.StatusCode != http.StatusTemporaryRedirect {
		if err := json.Unmarshal(data, &m); err != nil {
			ec.t.Fatalf("%s %s: %d non-JSON answer %q", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// waitUntil waits on a condition with a deadline.
var waitUntil = ddtest.WaitFor

// isolate cuts node i's Raft traffic off from the other nodes, both ways
// (on), or restores it: needs e2eOptions.raftProxies.
func (ec *e2eCluster) isolate(i int, on bool) {
	ec.raftProxies[i].Blackhole(on)
	for j, p := range ec.raftProxies {
		if j != i {
			p.CutFrom(raftIP(i), on)
		}
	}
}
