// Command testsummary turns the event stream of `go test -json` into what
// a person watching scripts/test.sh needs: one line per package as it
// finishes, the output of every failed test, every skipped test with its
// reason (skips that mean a whole kind of test did not run, such as the
// container tests without a Docker engine, are shouted), and a last line
// "N passed, N failed, N skipped".
//
//	go test -json ./... | go run ./scripts/testsummary
//
// It exits 1 when anything failed (a test, a package, a build) or when the
// stream ended with tests still running, 0 otherwise.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	os.Exit(summarize(os.Stdin, os.Stdout))
}

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output and build-fail events
	FailedBuild string
}

// maxKeptLines bounds the output kept per test: a failing chaos run can
// print a great deal, and its end says what went wrong.
const maxKeptLines = 400

type testKey struct{ pkg, test string }

// tally counts one package's finished tests.
type tally struct{ passed, failed, skipped int }

type result struct {
	key    testKey
	reason string
}

// summary accumulates the stream.
type summary struct {
	out     io.Writer
	output  map[testKey][]string // output of tests (and packages) still running or failed
	running map[testKey]bool
	counts  map[string]*tally // per package
	passed  int
	failed  []result
	skipped []result
	pkgFail []string
	build   map[string][]string // build output per import path
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, output: map[testKey][]string{}, running: map[testKey]bool{},
		counts: map[string]*tally{}, build: map[string][]string{}}
}

func summarize(in io.Reader, out io.Writer) int {
	s := newSummary(out)
	start := time.Now()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// Not an event (go vet or build chatter): pass it through.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testsummary: reading the test stream:", err)
		s.pkgFail = append(s.pkgFail, "(stream)")
	}
	return s.finish(time.Since(start))
}

func (s *summary) add(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		s.build[e.ImportPath] = append(s.build[e.ImportPath], e.Output)
	case "build-fail":
		fmt.Fprintf(s.out, "BUILD FAILED %s\n%s", e.ImportPath, strings.Join(s.build[e.ImportPath], ""))
	case "run":
		s.running[k] = true
	case "output":
		s.keep(k, e.Output)
	case "pass", "fail", "skip":
		delete(s.running, k)
		if e.Test == "" {
			s.packageDone(e)
			return
		}
		s.testDone(k, e.Action)
	}
}

func (s *summary) tally(pkg string) *tally {
	c := s.counts[pkg]
	if c == nil {
		c = &tally{}
		s.counts[pkg] = c
	}
	return c
}

func (s *summary) keep(k testKey, line string) {
	lines := append(s.output[k], line)
	if len(lines) > maxKeptLines {
		lines = lines[len(lines)-maxKeptLines:]
	}
	s.output[k] = lines
}

func (s *summary) testDone(k testKey, action string) {
	c := s.tally(k.pkg)
	switch action {
	case "pass":
		s.passed++
		c.passed++
	case "fail":
		s.failed = append(s.failed, result{key: k})
		c.failed++
		fmt.Fprintf(s.out, "--- FAIL %s %s\n%s", k.pkg, k.test, strings.Join(s.output[k], ""))
	case "skip":
		s.skipped = append(s.skipped, result{key: k, reason: skipReason(s.output[k])})
		c.skipped++
	}
	delete(s.output, k)
}

// packageDone prints the package's line, and its own output when it failed
// outside any test (a panic, a timeout, a failed build).
func (s *summary) packageDone(e event) {
	p := e.Package
	c := s.tally(p)
	n, f, sk := c.passed, c.failed, c.skipped
	counts := fmt.Sprintf("%d passed", n)
	if f > 0 {
		counts += fmt.Sprintf(", %d failed", f)
	}
	if sk > 0 {
		counts += fmt.Sprintf(", %d skipped", sk)
	}
	switch {
	case e.Action == "fail" && e.FailedBuild != "":
		s.pkgFail = append(s.pkgFail, p)
		fmt.Fprintf(s.out, "FAIL %s (build failed)\n", p)
	case e.Action == "fail":
		fmt.Fprintf(s.out, "FAIL %s %.1fs (%s)\n", p, e.Elapsed, counts)
		unfinished := s.failRunning(p)
		if f == 0 {
			// A panic or timeout: what the package printed says which.
			fmt.Fprint(s.out, strings.Join(s.output[testKey{pkg: p}], ""))
		}
		if f+unfinished == 0 {
			s.pkgFail = append(s.pkgFail, p)
		}
	case e.Action == "skip" || n+f+sk == 0:
		fmt.Fprintf(s.out, "?    %s [no tests]\n", p)
	default:
		fmt.Fprintf(s.out, "ok   %s %.1fs (%s)\n", p, e.Elapsed, counts)
	}
	delete(s.output, testKey{pkg: p})
}

// failRunning counts the tests of a package that ended (a panic, a
// timeout) while they were still running as failed.
func (s *summary) failRunning(pkg string) int {
	n := 0
	for k := range s.running {
		if k.pkg == pkg {
			delete(s.running, k)
			s.failed = append(s.failed, result{key: k, reason: "did not finish"})
			fmt.Fprintf(s.out, "--- DID NOT FINISH %s %s\n%s", k.pkg, k.test, strings.Join(s.output[k], ""))
			n++
		}
	}
	return n
}

// skipReason is what a skipped test logged, without the framework's own
// "=== RUN" and "--- SKIP" lines.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) > 3 {
		parts = parts[len(parts)-3:]
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

// loud reports whether a skip means a whole kind of test did not run, so
// that a green summary must not hide it.
func loud(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "docker") || strings.Contains(r, "container") ||
		strings.Contains(r, "python") || strings.Contains(r, "not installed")
}

func (s *summary) finish(took time.Duration) int {
	for k := range s.running {
		s.failed = append(s.failed, result{key: k, reason: "did not finish (the stream ended)"})
	}
	sort.Slice(s.skipped, func(i, j int) bool { return less(s.skipped[i].key, s.skipped[j].key) })
	sort.Slice(s.failed, func(i, j int) bool { return less(s.failed[i].key, s.failed[j].key) })
	if len(s.skipped) > 0 {
		fmt.Fprintf(s.out, "\nSkipped tests:\n")
		for _, r := range s.skipped {
			fmt.Fprintf(s.out, "  %s %s: %s\n", r.key.pkg, r.key.test, r.reason)
		}
		for _, r := range s.skipped {
			if loud(r.reason) {
				fmt.Fprintf(s.out, "\n!!! WARNING: %s %s DID NOT RUN: %s\n", r.key.pkg, r.key.test, r.reason)
			}
		}
	}
	if len(s.failed) > 0 || len(s.pkgFail) > 0 {
		fmt.Fprintf(s.out, "\nFailed:\n")
		for _, r := range s.failed {
			fmt.Fprintf(s.out, "  %s %s %s\n", r.key.pkg, r.key.test, r.reason)
		}
		for _, p := range s.pkgFail {
			fmt.Fprintf(s.out, "  package %s\n", p)
		}
	}
	line := fmt.Sprintf("%d passed, %d failed, %d skipped", s.passed, len(s.failed), len(s.skipped))
	if len(s.pkgFail) > 0 {
		line += fmt.Sprintf(", %d packages failed", len(s.pkgFail))
	}
	fmt.Fprintf(s.out, "\n%s (%s)\n", line, took.Round(time.Second))
	if len(s.failed) > 0 || len(s.pkgFail) > 0 {
		return 1
	}
	return 0
}

func less(a, b testKey) bool {
	if a.pkg != b.pkg {
		return a.pkg < b.pkg
	}
	return a.test < b.test
}
