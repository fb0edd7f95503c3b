package composetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/api"
)

// Names fixed by docker-compose.cluster.yml.
var (
	services = [3]string{"dd1", "dd2", "dd3"}       // compose services
	nodeIDs  = [3]string{"node1", "node2", "node3"} // Raft ids = Raft host names = certificate names
)

const (
	composeFile   = "docker-compose.cluster.yml"
	projectPrefix = "ddct" // every project these tests start is named ddct<hex>
	containerUID  = 65532  // the image's USER
	secretsGID    = 4242   // group the tests give the key files (exercises DD_SECRETS_GID)
	lockLifetime  = 600.0  // seconds: long enough to outlive the whole test
	// requestWait outlasts the server's wait for a leader (5 s), after
	// which a node without quorum answers 503.
	requestWait = api.DefaultLeaderWait + 3*time.Second
)

// cluster is one compose project of three nodes, started by startCluster
// and torn down (down -v) when the test ends.
type cluster struct {
	t       *testing.T
	root    string // repository root
	project string
	image   string
	bin     string // the doubledutch binary built for the image
	certs   string
	apiKey  string
	// adminKey guards membership, leadership transfer and backups.
	adminKey string
	ports    [3]int
	env      []string // compose variables
	compose  []string // "docker-compose" or "docker compose"

	follow *http.Client // follows redirects; verifies TLS against the CA
	direct *http.Client // returns a redirect as the answer
}

// requireDocker skips the test, saying why, unless a Docker engine answers.
func requireDocker(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("container tests skipped in -short mode")
	}
	if os.Getenv("DOUBLEDUTCH_SKIP_DOCKER_TESTS") == "1" {
		t.Skip("container tests skipped: DOUBLEDUTCH_SKIP_DOCKER_TESTS=1")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("container tests skipped: no docker command on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("container tests skipped: no Docker engine answers (docker info: %v: %s)", err, firstLine(out))
	}
	// The engine answers, so a missing compose tool is a broken setup, not
	// a reason to skip.
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	t.Fatal("a Docker engine answers but neither docker-compose nor 'docker compose' is installed")
	return nil
}

// startCluster builds the image, makes certificates and an API key, and
// brings a fresh cluster up under a unique project name on free ports. It
// returns once every node knows the same leader.
func startCluster(t *testing.T) *cluster {
	compose := requireDocker(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	reapStale(t)
	suffix := randomHex(4)
	c := &cluster{
		t:       t,
		root:    root,
		project: projectPrefix + suffix,
		image:   "doubledutch:composetest-" + suffix,
		compose: compose,
	}

	// The image, from the same script users run. Its binary also makes
	// the certificates and answers health checks here.
	dist := filepath.Join("dist", "composetest-"+suffix)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(root, dist)) })
	start := time.Now()
	c.run(5*time.Minute, "scripts/build-image.sh", "-t", c.image, "-o", dist)
	t.Cleanup(func() { c.runQuiet(time.Minute, "docker", "image", "rm", "-f", c.image) })
	c.bin = filepath.Join(root, dist, "doubledutch")
	size, _ := strconv.ParseInt(strings.TrimSpace(c.run(time.Minute, "docker", "image", "inspect", "-f", "{{.Size}}", c.image)), 10, 64)
	t.Logf("image %s built in %v: %d bytes (%.1f MiB)", c.image, time.Since(start).Round(time.Second), size, float64(size)/(1<<20))

	c.certs = filepath.Join(t.TempDir(), "certs")
	c.run(time.Minute, c.bin, "certs", "--out", c.certs, "--nodes", strings.Join(nodeIDs[:], ","))
	c.apiKey = randomHex(20)
	if err := os.WriteFile(filepath.Join(c.certs, "api-key.txt"), []byte(c.apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.adminKey = randomHex(20)
	if err := os.WriteFile(filepath.Join(c.certs, "admin-key.txt"), []byte(c.adminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gid := c.shareSecrets()

	for i := range c.ports {
		c.ports[i] = freePort(t)
	}
	c.env = []string{
		"COMPOSE_PROJECT_NAME=" + c.project,
		"DD_IMAGE=" + c.image,
		"DD_CERTS_DIR=" + c.certs,
		"DD_SECRETS_GID=" + strconv.Itoa(gid),
		"DD_PUBLISH_HOST=127.0.0.1",
		"DD_ADVERTISE_HOST=127.0.0.1",
		"DD_PORT1=" + strconv.Itoa(c.ports[0]),
		"DD_PORT2=" + strconv.Itoa(c.ports[1]),
		"DD_PORT3=" + strconv.Itoa(c.ports[2]),
		"DD_LOG_LEVEL=info",
	}
	c.newClients()

	// Cleanup runs last-registered first: logs before teardown.
	t.Cleanup(c.down)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose logs of %s (last lines):\n%s", c.project,
				c.runQuiet(time.Minute, append(c.composeArgs(), "logs", "--no-color", "--tail", "60")...))
		}
	})
	start = time.Now()
	c.composeRun(3*time.Minute, "up", "-d")
	leader := c.waitAgreedLeader(60*time.Second, 0, 1, 2)
	t.Logf("cluster %s up in %v on ports %v; leader %s", c.project, time.Since(start).Round(100*time.Millisecond), c.ports, nodeIDs[leader])
	return c
}

// shareSecrets makes the private files readable by the container's user
// the way a user without root does (scripts/cluster.sh): mode 0640 and a
// group the container process is given through DD_SECRETS_GID. As root the
// tests use a group of their own, so that the group_add path is what runs.
func (c *cluster) shareSecrets() int {
	private := []string{filepath.Join(c.certs, "api-key.txt"), filepath.Join(c.certs, "admin-key.txt")}
	for _, id := range nodeIDs {
		private = append(private, filepath.Join(c.certs, id+".key"))
	}
	gid := os.Getgid()
	if os.Getuid() == 0 {
		gid = secretsGID
	}
	for _, f := range private {
		if os.Getuid() == 0 {
			if err := os.Chown(f, 0, gid); err != nil {
				c.t.Fatal(err)
			}
		}
		if err := os.Chmod(f, 0o640); err != nil {
			c.t.Fatal(err)
		}
	}
	return gid
}

// with is c reporting to t: a subtest must fail through its own t.
func (c *cluster) with(t *testing.T) *cluster {
	cp := *c
	cp.t = t
	return &cp
}

func (c *cluster) newClients() {
	caPEM, err := os.ReadFile(filepath.Join(c.certs, "ca.crt"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		c.t.Fatal("no certificate in ca.crt")
	}
	newClient := func(follow bool) *http.Client {
		cl := &http.Client{Transport: &http.Transport{
			// A fresh connection per request: a kept-alive connection to a
			// killed container would only add noise to the measurements.
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DialContext:       (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}}
		if !follow {
			cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		}
		return cl
	}
	c.follow, c.direct = newClient(true), newClient(false)
}

// down removes everything the project created: containers, networks and
// volumes.
func (c *cluster) down() {
	out, err := c.runErr(3*time.Minute, append(c.composeArgs(), "down", "-v", "--remove-orphans", "-t", "5")...)
	if err != nil {
		c.t.Errorf("docker-compose down -v: %v\n%s", err, out)
		return
	}
	// down -v is how a user wipes the cluster: nothing may be left.
	for _, kind := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q"}} {
		args := append(append([]string{"docker"}, kind...), "--filter", "label=com.docker.compose.project="+c.project)
		if left := strings.TrimSpace(c.runQuiet(time.Minute, args...)); left != "" {
			c.t.Errorf("after down -v, %s still lists %s", strings.Join(args, " "), strings.Fields(left))
		}
	}
}

func (c *cluster) composeArgs() []string {
	return append(slices.Clone(c.compose), "-p", c.project, "-f", filepath.Join(c.root, composeFile))
}

func (c *cluster) composeRun(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return c.run(timeout, append(c.composeArgs(), args...)...)
}

// run runs a command in the repository root with the compose variables
// set, and fails the test if it fails.
func (c *cluster) run(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.runErr(timeout, args...)
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) runQuiet(timeout time.Duration, args ...string) string {
	out, _ := c.runErr(timeout, args...)
	return out
}

func (c *cluster) runErr(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// container is the id of node i's container.
func (c *cluster) container(i int) string {
	c.t.Helper()
	out := strings.Fields(c.run(time.Minute, "docker", "ps", "-aq",
		"--filter", "label=com.docker.compose.project="+c.project,
		"--filter", "label=com.docker.compose.service="+services[i]))
	if len(out) != 1 {
		c.t.Fatalf("want one container for %s, found %q", services[i], out)
	}
	return out[0]
}

func (c *cluster) raftNetwork() string { return c.project + "_raft" }

// running reports whether node i's container is running.
func (c *cluster) running(i int) bool {
	out := c.runQuiet(time.Minute, "docker", "inspect", "-f", "{{.State.Running}}", c.container(i))
	return strings.TrimSpace(out) == "true"
}

// onRaftNetwork reports whether node i's container is attached to the
// Raft network.
func (c *cluster) onRaftNetwork(i int) bool {
	out := c.run(time.Minute, "docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", c.container(i))
	var nets map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		c.t.Fatalf("docker inspect networks: %v: %s", err, out)
	}
	_, ok := nets[c.raftNetwork()]
	return ok
}

// connectRaft attaches node i to the Raft network again, with the alias
// its peers dial (docker network connect forgets compose's aliases).
func (c *cluster) connectRaft(i int) {
	c.run(time.Minute, "docker", "network", "connect", "--alias", nodeIDs[i], c.raftNetwork(), c.container(i))
}

// heal undoes whatever an earlier scenario may have left broken (a stopped
// node, a cut network) and waits until all three agree on a leader and
// have applied everything it has committed.
func (c *cluster) heal() int {
	c.t.Helper()
	for i := range services {
		if !c.running(i) {
			c.run(time.Minute, "docker", "start", c.container(i))
		}
		if !c.onRaftNetwork(i) {
			c.connectRaft(i)
		}
	}
	leader := c.waitAgreedLeader(60*time.Second, 0, 1, 2)
	c.waitCaughtUp(60*time.Second, leader, 0, 1, 2)
	return leader
}

// --- HTTP ---------------------------------------------------------------

func (c *cluster) url(i int, path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", c.ports[i], path)
}

// reply is one HTTP answer, or the error that stopped it.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r reply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// errCode is the error.code of an error answer ("" if none).
func (r reply) errCode() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// do sends a request with the API key as a bearer token.
func (c *cluster) do(cl *http.Client, method, url string, body any, timeout time.Duration) reply {
	return c.send(cl, method, url, body, timeout, true)
}

// send sends one request; bearer adds the API key header. It never fails
// the test (it may run outside the test's goroutine).
func (c *cluster) send(cl *http.Client, method, url string, body any, timeout time.Duration, bearer bool) reply {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{err: err}
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{err: err}
	}
	if bearer {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return reply{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// legacyGrant is the original /getlock answer.
type legacyGrant struct {
	ServerName   string `json:"servername"`
	LockName     string `json:"lockname"`
	SessionToken string `json:"sessiontoken"`
	LockAcquired bool   `json:"lockacquired"`
	FencingToken uint64 `json:"fencingtoken"`
}

// legacyGetLock asks node i for a lock the original way: the key in the
// query, no header.
func (c *cluster) legacyGetLock(cl *http.Client, i int, name string) reply {
	q := url.Values{"auth": {c.apiKey}, "lockname": {name}, "lifetime": {strconv.Itoa(int(lockLifetime))}}
	return c.send(cl, http.MethodGet, c.url(i, "/getlock?"+q.Encode()), nil, requestWait, false)
}

// acquired reports whether a /getlock answer granted the lock.
func (r reply) acquired() bool {
	var g legacyGrant
	return r.err == nil && json.Unmarshal(r.body, &g) == nil && g.LockAcquired
}

// grant is a v1 acquire answer.
type grant struct {
	Name         string  `json:"name"`
	FencingToken uint64  `json:"fencing_token"`
	SessionToken string  `json:"session_token"`
	ExpiresIn    float64 `json:"expires_in"`
}

// lockView is a v1 lock as reads show it.
type lockView struct {
	Name         string  `json:"name"`
	FencingToken uint64  `json:"fencing_token"`
	ExpiresIn    float64 `json:"expires_in"`
}

// clusterView is GET /v1/cluster: one node's view.
type clusterView struct {
	NodeID       string `json:"node_id"`
	RaftState    string `json:"raft_state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	Leader       struct {
		ID     string `json:"id"`
		APIURL string `json:"api_url"`
		IsSelf bool   `json:"is_self"`
	} `json:"leader"`
}

// acquire asks node i for a lock with the v1 API. requestID makes retries
// of the same logical request safe.
func (c *cluster) acquire(cl *http.Client, i int, name, requestID string) reply {
	body := map[string]any{"lifetime": lockLifetime}
	if requestID != "" {
		body["request_id"] = requestID
	}
	return c.do(cl, http.MethodPost, c.url(i, "/v1/locks/"+url.PathEscape(name)), body, requestWait)
}

// mustAcquire acquires name through node via (redirects followed),
// retrying answers that say "try again" with the same request id.
func (c *cluster) mustAcquire(via int, name string) grant {
	c.t.Helper()
	id := "composetest-" + randomHex(8)
	var last reply
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = c.acquire(c.follow, via, name, id)
		if last.err == nil && last.status == http.StatusOK {
			var g grant
			last.decode(c.t, &g)
			if g.Name != name || g.FencingToken == 0 || g.SessionToken == "" {
				c.t.Fatalf("acquire %s: odd grant %s", name, last)
			}
			return g
		}
		if last.err == nil && last.status < 500 {
			c.t.Fatalf("acquire %s through %s: %s", name, nodeIDs[via], last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("acquire %s through %s: no grant within 30s; last answer %s", name, nodeIDs[via], last)
	return grant{}
}

// readLock reads name through node i (linearizable; redirects followed
// when cl follows them).
func (c *cluster) readLock(cl *http.Client, i int, name string) reply {
	return c.do(cl, http.MethodGet, c.url(i, "/v1/locks/"+url.PathEscape(name)), nil, requestWait)
}

// mustReadLock reads name through node i until it answers 200.
func (c *cluster) mustReadLock(i int, name string) lockView {
	c.t.Helper()
	var last reply
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		last = c.readLock(c.follow, i, name)
		if last.err == nil && last.status == http.StatusOK {
			var l lockView
			last.decode(c.t, &l)
			return l
		}
		if last.err == nil && last.status < 500 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("read %s through %s: %s", name, nodeIDs[i], last)
	return lockView{}
}

// clusterState is node i's own view; ok is false if it did not answer.
func (c *cluster) clusterState(i int) (clusterView, bool) {
	r := c.do(c.direct, http.MethodGet, c.url(i, "/v1/cluster"), nil, 2*time.Second)
	if r.err != nil || r.status != http.StatusOK {
		return clusterView{}, false
	}
	var v clusterView
	if err := json.Unmarshal(r.body, &v); err != nil {
		c.t.Fatalf("decode /v1/cluster of %s: %v: %s", nodeIDs[i], err, r.body)
	}
	return v, true
}

// staleLocks lists the locks node i holds in its own applied state.
func (c *cluster) staleLocks(i int) (map[string]uint64, bool) {
	r := c.do(c.direct, http.MethodGet, c.url(i, "/v1/locks?stale=true&limit=1000"), nil, 2*time.Second)
	if r.err != nil || r.status != http.StatusOK {
		return nil, false
	}
	var list struct {
		Locks []lockView `json:"locks"`
	}
	r.decode(c.t, &list)
	out := make(map[string]uint64, len(list.Locks))
	for _, l := range list.Locks {
		out[l.Name] = l.FencingToken
	}
	return out, true
}

// locks lists every held lock, linearizably, through node i.
func (c *cluster) locks(i int) map[string]uint64 {
	c.t.Helper()
	var last reply
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		last = c.do(c.follow, http.MethodGet, c.url(i, "/v1/locks?limit=1000"), nil, requestWait)
		if last.err == nil && last.status == http.StatusOK {
			var list struct {
				Locks []lockView `json:"locks"`
			}
			last.decode(c.t, &list)
			out := make(map[string]uint64, len(list.Locks))
			for _, l := range list.Locks {
				out[l.Name] = l.FencingToken
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("list locks through %s: %s", nodeIDs[i], last)
	return nil
}

// --- waiting --------------------------------------------------------------

// waitFor polls cond every 100ms until it holds or timeout passes; then
// it fails the test with cond's last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agreedLeader is the leader every node in among names, if they all
// answer and agree and the leader itself says it leads.
func (c *cluster) agreedLeader(among ...int) (int, string) {
	leader := ""
	for _, i := range among {
		v, ok := c.clusterState(i)
		if !ok {
			return -1, nodeIDs[i] + " does not answer /v1/cluster"
		}
		if v.Leader.ID == "" {
			return -1, nodeIDs[i] + " knows no leader"
		}
		if leader != "" && v.Leader.ID != leader {
			return -1, fmt.Sprintf("%s follows %s, another node %s", nodeIDs[i], v.Leader.ID, leader)
		}
		leader = v.Leader.ID
	}
	li := slices.Index(nodeIDs[:], leader)
	if li < 0 {
		return -1, "unknown leader id " + leader
	}
	if v, ok := c.clusterState(li); !ok || v.RaftState != "Leader" {
		return -1, fmt.Sprintf("%s is named leader but says %q", leader, v.RaftState)
	}
	return li, ""
}

// waitAgreedLeader waits until the nodes in among agree on a leader and
// returns its index.
func (c *cluster) waitAgreedLeader(timeout time.Duration, among ...int) int {
	c.t.Helper()
	leader := -1
	waitFor(c.t, timeout, "a leader all of "+names(among)+" agree on", func() (bool, string) {
		var why string
		leader, why = c.agreedLeader(among...)
		return leader >= 0, why
	})
	return leader
}

// waitCaughtUp waits until every node in among has applied at least what
// the leader had committed when the wait began.
func (c *cluster) waitCaughtUp(timeout time.Duration, leader int, among ...int) {
	c.t.Helper()
	lv, ok := c.clusterState(leader)
	if !ok {
		c.t.Fatalf("leader %s does not answer", nodeIDs[leader])
	}
	target := lv.CommitIndex
	waitFor(c.t, timeout, fmt.Sprintf("%s applying index %d", names(among), target), func() (bool, string) {
		for _, i := range among {
			v, ok := c.clusterState(i)
			if !ok {
				return false, nodeIDs[i] + " does not answer"
			}
			if v.AppliedIndex < target {
				return false, fmt.Sprintf("%s applied %d of %d", nodeIDs[i], v.AppliedIndex, target)
			}
		}
		return true, ""
	})
}

// --- odds and ends ----------------------------------------------------------

func names(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, nodeIDs[i])
	}
	return strings.Join(s, ",")
}

func others(i int) []int {
	var out []int
	for j := range nodeIDs {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// reapStale removes what an earlier run of these tests left behind when
// it was killed before its cleanup ran (a test binary timeout, say):
// containers, networks and volumes of ddct* projects older than an hour.
// Younger ones may belong to a run still going on.
func reapStale(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "label=com.docker.compose.project",
		"--format", `{{.ID}} {{.Label "com.docker.compose.project"}} {{.CreatedAt}}`).Output()
	if err != nil {
		return
	}
	stale := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[1], projectPrefix) {
			continue
		}
		created, err := time.Parse("2006-01-02 15:04:05 -0700", f[2]+" "+f[3]+" "+f[4])
		if err != nil || time.Since(created) < time.Hour {
			continue
		}
		stale[f[1]] = true
	}
	for p := range stale {
		t.Logf("removing project %s left behind by an earlier run", p)
		label := "label=com.docker.compose.project=" + p
		ids, _ := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", label).Output()
		if f := strings.Fields(string(ids)); len(f) > 0 {
			_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f", "-v"}, f...)...).Run()
		}
		nets, _ := exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", label).Output()
		if f := strings.Fields(string(nets)); len(f) > 0 {
			_ = exec.CommandContext(ctx, "docker", append([]string{"network", "rm"}, f...)...).Run()
		}
		vols, _ := exec.CommandContext(ctx, "docker", "volume", "ls", "-q", "--filter", label).Output()
		if f := strings.Fields(string(vols)); len(f) > 0 {
			_ = exec.CommandContext(ctx, "docker", append([]string{"volume", "rm", "-f"}, f...)...).Run()
		}
	}
	images, _ := exec.CommandContext(ctx, "docker", "images", "--filter", "reference=doubledutch:composetest-*",
		"--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}").Output()
	for _, line := range strings.Split(strings.TrimSpace(string(images)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		created, err := time.Parse("2006-01-02 15:04:05 -0700", f[1]+" "+f[2]+" "+f[3])
		if err == nil && time.Since(created) > time.Hour {
			_ = exec.CommandContext(ctx, "docker", "image", "rm", "-f", f[0]).Run()
		}
	}
}
