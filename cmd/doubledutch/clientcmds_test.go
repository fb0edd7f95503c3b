package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/doubledutch/doubledutch/internal/ddtest"
)

// runSub runs one client subcommand in this process.
func runSub(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestClientSubcommands(t *testing.T) {
	cl := ddtest.Start(t, lockBinary)
	env := map[string]string{"DOUBLEDUTCH_ENDPOINTS": strings.Join(cl.URLs(), ","), "DOUBLEDUTCH_API_KEY": ddtest.Key}

	code, out, errs := runSub(t, env, "acquire", "--json", "report", "--lifetime", "1m", "--owner", "cli")
	var grant struct {
		Name  string `json:"name"`
		Fence uint64 `json:"fencing_token"`
		Token string `json:"session_token"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &grant) != nil || grant.Token == "" || grant.Fence == 0 {
		t.Fatalf("acquire: %d %q %q", code, out, errs)
	}
	if code, _, errs := runSub(t, env, "acquire", "report"); code != exitNotAcquired || strings.Count(errs, "\n") != 1 {
		t.Fatalf("acquire of a held lock: %d %q", code, errs)
	}
	if code, out, _ := runSub(t, env, "get", "report"); code != 0 || !strings.Contains(out, "held") || !strings.Contains(out, `"cli"`) {
		t.Fatalf("get: %d %q", code, out)
	}
	if code, out, _ := runSub(t, env, "list", "--json", "--prefix", "rep"); code != 0 || !strings.Contains(out, `"name":"report"`) {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, errs := runSub(t, env, "refresh", "report", grant.Token, "--lifetime", "2m"); code != 0 || !strings.Contains(out, "refreshed report") {
		t.Fatalf("refresh: %d %q %q", code, out, errs)
	}
	wrong := strings.Repeat("0", 32)
	if code, _, errs := runSub(t, env, "release", "report", wrong); code != 1 || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "not_held") {
		t.Fatalf("release with a wrong token: %d %q", code, errs)
	}
	if code, out, errs := runSub(t, env, "release", "report", grant.Token); code != 0 || out != "released report\n" {
		t.Fatalf("release: %d %q %q", code, out, errs)
	}
	if code, out, _ := runSub(t, env, "get", "--json", "report"); code != 0 || !strings.Contains(out, `"held":false`) {
		t.Fatalf("get of a free lock: %d %q", code, out)
	}
	code, out, errs = runSub(t, env, "cluster", "--json")
	var nodes []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &nodes) != nil || len(nodes) != 3 || nodes[0]["status"] == nil {
		t.Fatalf("cluster: %d %q %q", code, out, errs)
	}
	cl.Kill(0)
	if code, out, errs := runSub(t, env, "cluster"); code != 1 || !strings.Contains(out, "unreachable") || !strings.Contains(errs, "1 of 3 nodes unreachable") {
		t.Fatalf("cluster with a node down: %d %q %q", code, out, errs)
	}
}

func TestClientSubcommandErrorsAreOneLine(t *testing.T) {
	for _, args := range [][]string{{"get", "x"}, {"get"}, {"release", "x"}, {"lock", "x"}, {"lock", "x", "--bogus", "--", "true"}, {"list", "--limit"}} {
		code, _, errs := runSub(t, map[string]string{}, args...)
		if code == 0 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "doubledutch") {
			t.Errorf("%q: exit %d, stderr %q: want one line and a non-zero exit", args, code, errs)
		}
	}
}

func TestClientSubcommandHelp(t *testing.T) {
	for _, cmd := range []string{"lock", "acquire", "release", "refresh", "get", "list", "cluster"} {
		code, out, errs := runSub(t, nil, "help", cmd)
		if code != 0 || !strings.Contains(out, "Usage: doubledutch "+cmd) || !strings.Contains(out, "-endpoints") || errs != "" {
			t.Errorf("help %s: exit %d, stdout %q, stderr %q", cmd, code, out, errs)
		}
	}
}
