// Package ddtest runs real DoubleDutch clusters for tests: three
// `doubledutch serve` processes over loopback TCP, each node's API behind a
// Proxy that can drop a client's traffic. Each node advertises its proxy's
// URL, so every client request (and every redirect) goes through a proxy;
// Node.Direct bypasses it.
package ddtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Key is the API key of every test cluster.
const Key = "ddtest-key"

// AdminKey is the admin key (membership, leadership transfer) of every
// test cluster.
const AdminKey = "ddtest-admin-key"

// BuildBinary compiles cmd/doubledutch into dir (once per test binary is
// enough: call it from TestMain).
func BuildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "doubledutch")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/doubledutch/doubledutch/cmd/doubledutch")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Cluster is three node processes (and any added with AddNode).
type Cluster struct {
	Nodes []*Node
	dir   string // data directories and logs
}

// Node is one node process and the proxy in front of its API.
type Node struct {
	ID       string
	URL      string // advertised API URL: the proxy's
	Direct   string // the node's own API listener
	Proxy    *Proxy
	RaftAddr string
	cmd      *exec.Cmd
	logPath  string
	frozen   bool // stopped with SIGSTOP (Freeze)
}

// Start starts a three-node cluster from bin (see Launch) and waits for a
// leader known to every node. Everything is stopped at the test's end,
// and the nodes' log tails are logged if the test failed.
func Start(t testing.TB, bin string) *Cluster {
	t.Helper()
	c, err := Launch(bin, t.TempDir())
	if c != nil {
		t.Cleanup(func() {
			c.Close()
			if t.Failed() {
				t.Log(c.LogTails())
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLeader(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// Launch starts three node processes from bin with their data and logs in
// dir. Close stops them. On error the returned cluster (if any) still
// needs Close.
func Launch(bin, dir string) (*Cluster, error) {
	c := &Cluster{dir: dir}
	var voters []string
	apiAddrs := make([]string, 3)
	var ports freePorts
	defer ports.release()
	for i := 0; i < 3; i++ {
		n := &Node{ID: fmt.Sprintf("node%d", i+1)}
		var err error
		if n.RaftAddr, err = ports.next(); err != nil {
			return c, err
		}
		if apiAddrs[i], err = ports.next(); err != nil {
			return c, err
		}
		n.Direct = "http://" + apiAddrs[i]
		if n.Proxy, err = NewProxy(apiAddrs[i]); err != nil {
			return c, err
		}
		n.URL = "http://" + n.Proxy.Addr()
		n.logPath = filepath.Join(dir, n.ID+".log")
		voters = append(voters, n.ID+"="+n.RaftAddr)
		c.Nodes = append(c.Nodes, n)
	}
	ports.release()
	for i, n := range c.Nodes {
		args := []string{"serve", "--node-id", n.ID, "--http", "--listen", apiAddrs[i], "--api-url", n.URL,
			"--raft-bind", n.RaftAddr, "--voters", strings.Join(voters, ","),
			"--data-dir", filepath.Join(dir, n.ID), "--log-level", "warn"}
		if err := n.start(bin, args); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (n *Node) start(bin string, args []string) error {
	logf, err := os.Create(n.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	n.cmd = exec.Command(bin, args...)
	n.cmd.Env = append(os.Environ(), "DOUBLEDUTCH_API_KEY="+Key, "DOUBLEDUTCH_ADMIN_KEY="+AdminKey)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	DieWithParent(n.cmd)
	return n.cmd.Start()
}

// URLs are the advertised API URLs (through the proxies).
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL
	}
	return out
}

// WaitLeader waits until a live node leads and every live node knows it,
// and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i := c.LeaderNow(); i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader known to every live node within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type health struct {
	NodeID   string `json:"node_id"`
	LeaderID string `json:"leader_id"`
	IsLeader bool   `json:"is_leader"`
}

// LeaderNow is the index of the node that leads with every live node
// agreeing, or -1. Frozen nodes are not asked (they would not answer).
func (c *Cluster) LeaderNow() int {
	leader, leaderID := -1, ""
	var seen []health
	for i, n := range c.Nodes {
		if !n.Alive() || n.frozen {
			continue
		}
		h, err := getHealth(n.Direct)
		if err != nil {
			return -1
		}
		if h.IsLeader {
			leader, leaderID = i, h.NodeID
		}
		seen = append(seen, h)
	}
	for _, h := range seen {
		if leaderID == "" || h.LeaderID != leaderID {
			return -1
		}
	}
	return leader
}

func getHealth(base string) (health, error) {
	var h health
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// Alive says whether the node's process has not been killed.
func (n *Node) Alive() bool { return n.cmd != nil && n.cmd.ProcessState == nil }

// Kill stops node i with SIGKILL and reaps it.
func (c *Cluster) Kill(i int) {
	n := c.Nodes[i]
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
}

// Freeze stops node i with SIGSTOP: the process keeps its sockets, so
// connections to it are accepted by the kernel and then hang, as with a
// wedged process or a VM paused by its host. Thaw resumes it.
func (c *Cluster) Freeze(i int) {
	n := c.Nodes[i]
	_ = n.cmd.Process.Signal(syscall.SIGSTOP)
	n.frozen = true
	waitStopped(n.cmd.Process.Pid, 5*time.Second)
}

// Thaw resumes node i after Freeze (SIGCONT).
func (c *Cluster) Thaw(i int) {
	n := c.Nodes[i]
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	n.frozen = false
}

// Blackhole cuts (or restores) every proxy: clients of the advertised
// URLs are cut off from the cluster, which keeps running.
func (c *Cluster) Blackhole(on bool) {
	for _, n := range c.Nodes {
		n.Proxy.Blackhole(on)
	}
}

// Close kills every node and closes the proxies.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		if n.Alive() {
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			_ = n.cmd.Wait()
		}
		if n.Proxy != nil {
			n.Proxy.Close()
		}
	}
}

// LogTails returns the end of every node's log.
func (c *Cluster) LogTails() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		data, _ := os.ReadFile(n.logPath)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "%s log tail:\n%s\n", n.ID, data)
	}
	return b.String()
}

// freePorts hands out free loopback ports for one set-up. Each stays
// bound until release, so the kernel cannot give the same port out twice
// before the nodes start (it once gave two nodes one Raft port, and the
// cluster refused its own voter list). A node binds its port a moment
// after release; a clash with another process is unlikely and loud.
type freePorts struct{ held []net.Listener }

func (p *freePorts) next() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p.held = append(p.held, l)
	return l.Addr().String(), nil
}

func (p *freePorts) release() {
	for _, l := range p.held {
		l.Close()
	}
	p.held = nil
}
