package ddtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// AddNode starts one more node process with --join, behind its own proxy
// like the others, and adds it as a voter through the leader (PUT
// /v1/cluster/nodes/ID with the admin key). It returns the node's index.
// The node is a member once this returns; it may still be catching up.
func (c *Cluster) AddNode(bin string) (int, error) {
	n := &Node{ID: fmt.Sprintf("node%d", len(c.Nodes)+1)}
	var ports freePorts
	defer ports.release()
	var err error
	if n.RaftAddr, err = ports.next(); err != nil {
		return -1, err
	}
	apiAddr, err := ports.next()
	if err != nil {
		return -1, err
	}
	n.Direct = "http://" + apiAddr
	if n.Proxy, err = NewProxy(apiAddr); err != nil {
		return -1, err
	}
	n.URL = "http://" + n.Proxy.Addr()
	n.logPath = filepath.Join(c.dir, n.ID+".log")
	ports.release()
	args := []string{"serve", "--node-id", n.ID, "--http", "--listen", apiAddr, "--api-url", n.URL,
		"--raft-bind", n.RaftAddr, "--join", "--data-dir", filepath.Join(c.dir, n.ID), "--log-level", "warn"}
	if err := n.start(bin, args); err != nil {
		n.Proxy.Close()
		return -1, err
	}
	// Added to c.Nodes only once a member: until then it knows no leader,
	// and WaitLeader (which the admin call uses) would wait for it.
	body := fmt.Sprintf(`{"raft_address":%q}`, n.RaftAddr)
	if err := c.Admin(http.MethodPut, "/v1/cluster/nodes/"+n.ID, body); err != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.Proxy.Close()
		return -1, fmt.Errorf("adding %s: %w", n.ID, err)
	}
	c.Nodes = append(c.Nodes, n)
	return len(c.Nodes) - 1, nil
}

// TransferLeader hands leadership to node i (POST /v1/cluster/leader on
// the leader, admin key) and waits until every live node agrees.
func (c *Cluster) TransferLeader(i int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.Admin(http.MethodPost, "/v1/cluster/leader", fmt.Sprintf(`{"target":%q}`, c.Nodes[i].ID))
		if err == nil {
			if l, werr := c.WaitLeader(time.Until(deadline)); werr == nil && l == i {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leadership did not move to %s within %v (last: %v)", c.Nodes[i].ID, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Admin sends an admin request to the leader's own listener (past its
// proxy) and fails unless it answers 200.
func (c *Cluster) Admin(method, path, body string) error {
	i, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Nodes[i].Direct+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+AdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
