package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTestJSON runs the real `go test -json` over a throwaway module and
// returns its event stream.
func goTestJSON(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.22\n"
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("go test: %v", err)
	}
	return out
}

func TestSummaryCountsFailuresSkipsAndBuildErrors(t *testing.T) {
	stream := goTestJSON(t, map[string]string{
		"a/a_test.go": `package a
import "testing"
func TestPasses(t *testing.T) {}
func TestFails(t *testing.T) { t.Log("the detail of the failure"); t.Fail() }
func TestSkipsQuietly(t *testing.T) { t.Skip("not on this platform") }
func TestSkipsContainers(t *testing.T) { t.Skip("container tests skipped: no Docker engine answers") }
`,
		"b/b_test.go": "package b\nimport \"testing\"\nfunc TestBroken(t *testing.T) { undefined() }\n",
		"c/c.go":      "package c\n",
	})
	var out bytes.Buffer
	code := summarize(bytes.NewReader(stream), &out)
	got := out.String()
	t.Log(got)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "1 passed, 1 failed, 2 skipped, 1 packages failed (") {
		t.Errorf("last line %q", last)
	}
	for _, want := range []string{
		"FAIL example.com/m/a",                                         // the package line
		"the detail of the failure",                                    // the failed test's output
		"TestSkipsQuietly: a_test.go:5: not on this platform",          // skips with reasons
		"!!! WARNING: example.com/m/a TestSkipsContainers DID NOT RUN", // loud
		"undefined: undefined",                                         // the build error
		"?    example.com/m/c [no tests]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(got, "WARNING: example.com/m/a TestSkipsQuietly") {
		t.Error("an ordinary skip was shouted")
	}
}

func TestSummaryOfAGreenRunExitsZero(t *testing.T) {
	stream := goTestJSON(t, map[string]string{
		"a/a_test.go": "package a\nimport \"testing\"\nfunc TestA(t *testing.T) { t.Run(\"sub\", func(t *testing.T) {}) }\n",
	})
	var out bytes.Buffer
	if code := summarize(bytes.NewReader(stream), &out); code != 0 {
		t.Errorf("exit code %d for a green run:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "ok   example.com/m/a") || !strings.Contains(out.String(), "\n2 passed, 0 failed, 0 skipped (") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestStreamEndingMidTestCountsAsFailure(t *testing.T) {
	stream := `{"Action":"run","Package":"p","Test":"TestHangs"}
{"Action":"output","Package":"p","Test":"TestHangs","Output":"=== RUN   TestHangs\n"}
`
	var out bytes.Buffer
	if code := summarize(strings.NewReader(stream), &out); code != 1 {
		t.Errorf("exit code %d, want 1:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "0 passed, 1 failed, 0 skipped") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestPanickingPackageShowsThePanic(t *testing.T) {
	stream := goTestJSON(t, map[string]string{
		"a/a_test.go": "package a\nimport \"testing\"\nfunc TestPanics(t *testing.T) { panic(\"boom in the test\") }\n",
	})
	var out bytes.Buffer
	if code := summarize(bytes.NewReader(stream), &out); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(out.String(), "boom in the test") || !strings.Contains(out.String(), "0 passed, 1 failed, 0 skipped") {
		t.Errorf("summary:\n%s", out.String())
	}
}
