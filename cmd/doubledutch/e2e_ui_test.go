package main

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doubledutch/doubledutch/client"
)

// findChromium returns the chromium binary, installing Debian's package
// with scripts/install-chromium.sh when it is missing. The test skips,
// loudly, only when that fails.
func findChromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	out, err := exec.Command("../../scripts/install-chromium.sh").CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); err == nil && lerr == nil {
		return p
	}
	msg := fmt.Sprintf("\n%s\n!!! SKIPPING the status-page browser test: Chromium is not installed and\n!!! scripts/install-chromium.sh could not install it: %v\n%s\n%s",
		strings.Repeat("!", 72), err, strings.TrimSpace(string(out)), strings.Repeat("!", 72))
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
	return ""
}

// chromium runs headless Chromium on url with extra flags and returns its
// standard output (the DOM for --dump-dom).
func chromium(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-extensions", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		// Virtual time runs the page's timers and fetches, then stops.
		"--virtual-time-budget=6000",
	}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
	}
	return string(out)
}

// screenshotDir is where the page's screenshots go: $DOUBLEDUTCH_ARTIFACTS
// or a fixed directory under the system temp dir, printed by the test.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("DOUBLEDUTCH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "doubledutch-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInChromium loads /ui in headless Chromium against a real
// three-node cluster with known locks: the page shows the nodes, the
// leader, each lock's name, owner, fencing token, remaining time and
// waiter count, and never a session token. It writes screenshots (desktop
// and phone width) as test artifacts.
func TestStatusPageInChromium(t *testing.T) {
	bin := findChromium(t)
	ec := startE2ECluster(t, false)
	c := ec.v1Client()
	ctx := context.Background()
	var held []*client.Lock
	for _, l := range []struct{ name, owner string }{
		{"deploy/web-frontend", "ci-runner-7"},
		{"db-migration", "alice@ops"},
		{"nightly-report", ""},
	} {
		g, err := c.Acquire(ctx, l.name, client.AcquireOptions{Lifetime: 10 * time.Minute, Owner: l.owner})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, g)
	}
	waiting := make(chan error, 1)
	wctx, stopWaiting := context.WithCancel(ctx)
	defer func() { stopWaiting(); <-waiting }()
	go func() {
		_, err := c.Acquire(wctx, "db-migration", client.AcquireOptions{Lifetime: time.Minute, Wait: time.Minute})
		waiting <- err
	}()
	waitForWaiters(t, c, "db-migration", 1)

	l := ec.leader()
	page := ec.urls[l] + "/ui/#key=" + testKey
	dom := chromium(t, bin, page, "--dump-dom")
	if !strings.Contains(dom, `data-loaded="true"`) {
		t.Fatalf("the page never loaded the cluster's state:\n%s", dom)
	}
	for _, g := range held {
		for _, want := range []string{g.Name(), g.Info().Owner, fmt.Sprintf(">%d<", g.Fence())} {
			if !strings.Contains(dom, want) {
				t.Errorf("page lacks %q (lock %s)", want, g.Name())
			}
		}
		if strings.Contains(dom, g.Token()) {
			t.Errorf("page shows the session token of %s", g.Name())
		}
	}
	for _, n := range ec.nodes {
		if !strings.Contains(dom, n.cfg.NodeID) {
			t.Errorf("page lacks node %s", n.cfg.NodeID)
		}
	}
	for _, want := range []string{">leader<", ">follower<", `class="num remaining">9 min`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The waited-for lock's row counts its one waiter.
	row := regexp.MustCompile(`db-migration</td><td>alice@ops</td><td class="num fence">\d+</td><td class="num remaining">[^<]+</td><td class="num">1</td>`)
	if !row.MatchString(dom) {
		t.Errorf("db-migration's row does not show its owner, token, remaining time and one waiter:\n%s", dom)
	}
	if strings.Contains(dom, `id="login" hidden`) == false {
		t.Error("the key form is still shown after the key was given")
	}
	if strings.Contains(dom, testKey) {
		t.Error("page shows the API key")
	}

	// A follower's page shows its local copy and links to the leader's.
	f := (l + 1) % 3
	fdom := chromium(t, bin, ec.urls[f]+"/ui/#key="+testKey, "--dump-dom")
	for _, want := range []string{`data-loaded="true"`, "This node is a follower", `href="` + ec.urls[l] + `/ui/"`, held[0].Name()} {
		if !strings.Contains(fdom, want) {
			t.Errorf("follower page lacks %q", want)
		}
	}

	dir := screenshotDir(t)
	for _, shot := range []struct{ file, size string }{
		{"status-page.png", "1100,720"},
		{"status-page-phone.png", "390,844"},
	} {
		path := filepath.Join(dir, shot.file)
		_ = os.Remove(path)
		chromium(t, bin, page, "--screenshot="+path, "--window-size="+shot.size)
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 300 {
			t.Fatalf("screenshot %s: %v %v", path, err, img)
		}
		t.Logf("status page screenshot: %s", path)
	}
}
