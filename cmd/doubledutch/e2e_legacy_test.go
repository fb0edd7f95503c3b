package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLegacyEndpointsThroughFollowers(t *testing.T) {
	ec := startE2ECluster(t, false)
	f := ec.followers()[0]
	base := ec.urls[f]
	code, got, _ := ec.do(ec.follow, "GET", base+"/getlock?auth="+testKey+"&lockname=legacy&lifetime=20", nil)
	if code != 200 || got["lockacquired"] != true || len(got["sessiontoken"].(string)) != 32 || got["fencingtoken"].(float64) <= 0 ||
		got["lockname"] != "legacy" || !strings.HasPrefix(got["servername"].(string), "DoubleDutch/") {
		t.Fatalf("getlock: %d %v", code, got)
	}
	token := got["sessiontoken"].(string)

	// Held: a second getlock without waiting is refused with 200 and false.
	code, busy, _ := ec.do(ec.follow, "GET", base+"/getlock?auth="+testKey+"&lockname=legacy", nil)
	if code != 200 || busy["lockacquired"] != false || busy["sessiontoken"] != "" {
		t.Fatalf("getlock of a held lock: %d %v", code, busy)
	}
	code, st, _ := ec.do(ec.follow, "GET", base+"/status?auth="+testKey, nil)
	locks, _ := st["locks"].([]any)
	if code != 200 || st["status"] != "ok" || len(locks) != 1 {
		t.Fatalf("status: %d %v", code, st)
	}
	entry := locks[0].(map[string]any)
	if entry["lockname"] != "legacy" || entry["sessiontoken"] != "" || entry["remaining"].(float64) <= 0 || entry["remaining"].(float64) > 20 {
		t.Fatalf("status entry: %v", entry)
	}
	for _, bad := range []string{"", "?auth=wrong"} {
		code, body, _ := ec.do(ec.follow, "GET", base+"/status"+bad, nil)
		if (code != 400 && code != 401) || body["locks"] != nil {
			t.Fatalf("status%s: %d %v", bad, code, body)
		}
	}
	// DELETE is redirected with its method kept; a wrong token is a 400.
	code, rel, _ := ec.do(ec.follow, "DELETE", base+"/releaselock?lockname=legacy&token="+strings.Repeat("0", 32), nil)
	if code != 400 || rel["lockreleased"] != false {
		t.Fatalf("release with a wrong token: %d %v", code, rel)
	}
	code, rel, _ = ec.do(ec.follow, "DELETE", base+"/releaselock?lockname=legacy&token="+token, nil)
	if code != 200 || rel["lockreleased"] != true || rel["lockname"] != "legacy" {
		t.Fatalf("release: %d %v", code, rel)
	}
	code, rel, _ = ec.do(ec.follow, "DELETE", base+"/releaselock?lockname=legacy&token="+token+"&auth=wrong", nil)
	if code != 401 {
		t.Fatalf("release with a wrong key: %d %v", code, rel)
	}
	for _, q := range []string{"lockname=", "lockname=x&lifetime=-1", "lockname=x&timeout=NaN", "lockname=x&lifetime=Inf", "lockname=x&timeout=abc"} {
		code, body, _ := ec.do(ec.follow, "GET", base+"/getlock?auth="+testKey+"&"+q, nil)
		if code != 400 || body["lockacquired"] == true {
			t.Fatalf("getlock?%s: %d %v", q, code, body)
		}
	}
}

func TestFollowersRedirectEveryMethod(t *testing.T) {
	ec := startE2ECluster(t, false)
	lead := ec.urls[ec.leader()]
	reqs := []struct{ method, path string }{
		{"GET", "/getlock?auth=" + testKey + "&lockname=a%20b&lifetime=2"},
		{"DELETE", "/releaselock?lockname=a&token=t"},
		{"GET", "/status?auth=" + testKey},
		{"POST", "/v1/locks/x%2Fy"},
		{"DELETE", "/v1/locks/x"},
		{"POST", "/v1/locks/x/refresh"},
		{"GET", "/v1/locks/x"},
		{"GET", "/v1/locks?prefix=a"},
	}
	for _, f := range ec.followers() {
		for _, r := range reqs {
			code, _, h := ec.do(ec.client, r.method, ec.urls[f]+r.path, strings.NewReader("{}"), "Authorization", "Bearer "+testKey)
			if code != http.StatusTemporaryRedirect || h.Get("Location") != lead+r.path {
				t.Errorf("%s %s on a follower: %d Location %q, want 307 to %s", r.method, r.path, code, h.Get("Location"), lead+r.path)
			}
		}
	}
}

var clientName = regexp.MustCompile(`client-[0-9]+`)

// TestOriginalSuite runs what the original DoubleDutch's own tests check.
func TestOriginalSuite(t *testing.T) {
	ec := startE2ECluster(t, false)
	base := ec.urls[ec.leader()]
	const clients = 1000
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := ec.follow.Get(fmt.Sprintf("%s/getlock?auth=%s&lockname=client-%d&lifetime=60", base, testKey, i))
			if err != nil {
				errs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprintf("%s: %s", resp.Status, body)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	// Every distinct answer (lock names aside), with how many clients got
	// it: one failure in a thousand says little about its cause, the mix
	// says more.
	failed, seen := 0, map[string]int{}
	for e := range errs {
		failed++
		seen[clientName.ReplaceAllString(e, "client-N")]++
	}
	for e, n := range seen {
		t.Errorf("%d concurrent client(s) failed: %s", n, e)
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent clients failed", failed, clients)
	}
	_, st, _ := ec.do(ec.follow, "GET", base+"/status?auth="+testKey, nil)
	if n := len(st["locks"].([]any)); n != clients {
		t.Fatalf("status lists %d locks, want %d", n, clients)
	}

	// A 1 s lock goes to a waiter that asks with timeout=1 right after.
	code, first, _ := ec.do(ec.follow, "GET", base+"/getlock?auth="+testKey+"&lockname=short&lifetime=1", nil)
	if code != 200 || first["lockacquired"] != true {
		t.Fatalf("short lock: %v", first)
	}
	start := time.Now()
	code, second, _ := ec.do(ec.follow, "GET", base+"/getlock?auth="+testKey+"&lockname=short&timeout=1", nil)
	if code != 200 || second["lockacquired"] != true {
		t.Fatalf("waiter with timeout=1 after %v: %d %v", time.Since(start), code, second)
	}

	// A two-week lifetime is accepted and reported.
	twoWeeks := (14 * 24 * time.Hour).Seconds()
	code, _, _ = ec.do(ec.follow, "GET", fmt.Sprintf("%s/getlock?auth=%s&lockname=long&lifetime=%.0f", base, testKey, twoWeeks), nil)
	if code != 200 {
		t.Fatalf("two-week lock: %d", code)
	}
	_, st, _ = ec.do(ec.follow, "GET", base+"/status?auth="+url.QueryEscape(testKey), nil)
	for _, l := range st["locks"].([]any) {
		m := l.(map[string]any)
		if m["lockname"] == "long" {
			if r := m["remaining"].(float64); r < twoWeeks-60 || r > twoWeeks {
				t.Fatalf("two-week lock reports %v s remaining", r)
			}
			return
		}
	}
	t.Fatal("two-week lock missing from /status")
}
