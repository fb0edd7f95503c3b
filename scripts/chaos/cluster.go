package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ClusterConfig says how to run the nodes.
type ClusterConfig struct {
	Bin      string
	Dir      string   // data directories and logs
	Nodes    int      // default 3
	ExtraEnv []string // e.g. the broken mode's settings
	// Raft timeouts passed to every node.
	Heartbeat, Election, LeaderLease time.Duration
}

// Cluster is the running nodes, their proxies and a client per node.
type Cluster struct {
	nodes []*node
	net   *Network
	key   string
	http  *http.Client
}

const apiKey = "chaos-test-key"

// raftIP is node i's own loopback address: Linux routes all of 127/8 to
// lo, so each node can bind (and dial from) an address of its own.
func raftIP(i int) string { return fmt.Sprintf("127.0.0.%d", 11+i) }

// StartCluster starts the proxies and every node, and waits for a leader.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	if _, err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster did not come up: %w%s", err, c.logTails())
	}
	return c, nil
}

func newCluster(cfg ClusterConfig) (*Cluster, error) {
	var proxies, targets, ips, voters []string
	for i := 0; i < cfg.Nodes; i++ {
		ip := raftIP(i)
		rp, err := freePort(ip)
		if err != nil {
			return nil, fmt.Errorf("binding %s (the harness needs Linux, where 127/8 is all loopback): %w", ip, err)
		}
		pp, err := freePort(ip)
		if err != nil {
			return nil, err
		}
		ips = append(ips, ip)
		targets = append(targets, fmt.Sprintf("%s:%d", ip, rp))
		proxies = append(proxies, fmt.Sprintf("%s:%d", ip, pp))
		voters = append(voters, fmt.Sprintf("node%d=%s", i+1, proxies[i]))
	}
	netw, err := NewNetwork(proxies, targets, ips)
	if err != nil {
		return nil, err
	}
	c := &Cluster{net: netw, key: apiKey, http: &http.Client{Timeout: time.Second}}
	for i := 0; i < cfg.Nodes; i++ {
		n, err := newNode(cfg, i, targets[i], proxies[i], strings.Join(voters, ","))
		if err != nil {
			netw.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

func newNode(cfg ClusterConfig, i int, raftAddr, proxyAddr, voters string) (*node, error) {
	apiPort, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("node%d", i+1)
	listen := fmt.Sprintf("127.0.0.1:%d", apiPort)
	dataDir := filepath.Join(cfg.Dir, id)
	args := []string{"serve", "--node-id", id, "--http",
		"--listen", listen, "--api-url", "http://" + listen,
		"--raft-bind", raftAddr, "--raft-advertise", proxyAddr, "--voters", voters,
		"--data-dir", dataDir, "--log-level", "info",
		"--heartbeat-timeout", cfg.Heartbeat.String(), "--election-timeout", cfg.Election.String(),
		"--leader-lease-timeout", cfg.LeaderLease.String(),
		// Small snapshots, so restarts also exercise snapshot restore.
		"--snapshot-interval", "2s", "--snapshot-threshold", "256",
	}
	return &node{idx: i, id: id, bin: cfg.Bin, args: args,
		env:     childEnv(append([]string{"DOUBLEDUTCH_API_KEY=" + apiKey}, cfg.ExtraEnv...)...),
		logPath: filepath.Join(cfg.Dir, id+".log"), apiURL: "http://" + listen, raftAddr: raftAddr, dataDir: dataDir}, nil
}

// Close kills every node and stops the proxies.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.ensureDead() }()
	}
	wg.Wait()
	c.net.Close()
}

// URLs are the nodes' API URLs.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.apiURL)
	}
	return out
}

// nodeStatus is the part of GET /v1/cluster the harness reads.
type nodeStatus struct {
	NodeID       string `json:"node_id"`
	RaftState    string `json:"raft_state"`
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	LeaseNow     int64  `json:"lease_now_ms"`
	Leader       struct {
		ID     string `json:"id"`
		IsSelf bool   `json:"is_self"`
	} `json:"leader"`
}

// get fetches a JSON document from node i.
func (c *Cluster) get(ctx context.Context, i int, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.nodes[i].apiURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}

func (c *Cluster) status(ctx context.Context, i int) (nodeStatus, error) {
	var st nodeStatus
	err := c.get(ctx, i, "/v1/cluster", &st)
	return st, err
}

// statuses asks every serving node at once; a missing entry did not answer.
func (c *Cluster) statuses(ctx context.Context) map[int]nodeStatus {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[int]nodeStatus{}
	for i, n := range c.nodes {
		if !n.serving() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, err := c.status(ctx, i); err == nil {
				mu.Lock()
				out[i] = st
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// currentLeader is the serving node that says it leads, in the highest
// term; -1 when none does.
func (c *Cluster) currentLeader(ctx context.Context) int {
	best, term := -1, uint64(0)
	for i, st := range c.statuses(ctx) {
		if st.Leader.IsSelf && (best < 0 || st.Term > term) {
			best, term = i, st.Term
		}
	}
	return best
}

// Leader waits up to timeout for a leader and returns its index.
func (c *Cluster) Leader(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.currentLeader(ctx); l >= 0 {
			return l, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader within %v", timeout)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// WaitHealthy waits until every running node answers and names the same
// leader, which says it leads. It returns the leader's index.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l, ok := c.healthy(ctx); ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("not every node agreed on a leader within %v", timeout)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) (int, bool) {
	sts := c.statuses(ctx)
	leader, leaderID := -1, ""
	for i, n := range c.nodes {
		st, ok := sts[i]
		if !ok || !n.serving() {
			return -1, false
		}
		if leaderID == "" {
			leaderID = st.Leader.ID
		}
		if st.Leader.ID == "" || st.Leader.ID != leaderID {
			return -1, false
		}
		if st.Leader.IsSelf {
			leader = i
		}
	}
	return leader, leader >= 0
}

// logTails is the end of every node's log, for start-up failures.
func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n--- %s (%s), exit: %v\n%s", n.id, n.logPath, n.exitError(), n.logTail())
	}
	return b.String()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
