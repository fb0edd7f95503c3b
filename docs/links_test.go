// Package docs holds the project's documentation. Its tests check that the
// Markdown in the whole repository stands alone in a fresh clone: every
// relative link resolves inside the repository (anchors included), and
// nothing points at the workspace beside the clone.
package docs

import (
	"bufio"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outsideDir is the sibling folder of the development workspace (the
// benchmark kit, design notes). Built from parts so this file does not
// match its own search.
var outsideDir = ".." + "/shared"

// mayUseOutside lists the files that legitimately refer to outsideDir: the
// benchmark script needs the etcd reference kit and says so when it is
// absent.
var mayUseOutside = map[string]bool{
	"scripts/bench.sh": true,
}

// skipDirs are never part of a clone's documentation: git internals,
// build output and generated secrets (both git-ignored).
var skipDirs = map[string]bool{".git": true, "dist": true, "certs": true, "node_modules": true}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found above docs/: %v", err)
	}
	return root
}

// repoFiles returns every file of the working tree, relative to root, with
// forward slashes.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestMarkdownLinksResolveInsideTheRepository(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, rel := range repoFiles(t, root) {
		if !strings.HasSuffix(rel, ".md") || strings.Contains(rel, "/testdata/") {
			continue
		}
		for _, l := range markdownLinks(t, filepath.Join(root, rel)) {
			checked++
			if msg := checkLink(root, rel, l.target); msg != "" {
				t.Errorf("%s:%d: link %q: %s", rel, l.line, l.target, msg)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no links found: the checker is not looking at the Markdown files")
	}
	t.Logf("%d links checked", checked)
}

func TestNothingPointsOutsideTheClone(t *testing.T) {
	root := repoRoot(t)
	for _, rel := range repoFiles(t, root) {
		if mayUseOutside[rel] {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, outsideDir) {
				t.Errorf("%s:%d refers to %s, which a fresh clone does not have: %s", rel, i+1, outsideDir, strings.TrimSpace(line))
			}
		}
	}
}

type link struct {
	line   int
	target string
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
)

// markdownLinks returns the inline links and reference definitions of a
// Markdown file, outside fenced code blocks and code spans.
func markdownLinks(t *testing.T, path string) []link {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []link
	fenced := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{n, m[1]})
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, link{n, m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLink returns why the target of a link in file rel is broken, or "".
// Links with a scheme (https:, mailto:) are not followed: the check must
// pass offline.
func checkLink(root, rel, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "unparsable: " + err.Error()
	}
	if u.Scheme != "" || u.Host != "" {
		return ""
	}
	if strings.HasPrefix(u.Path, "/") {
		return "absolute path: use a path relative to the file"
	}
	file := rel
	if u.Path != "" {
		file = filepath.ToSlash(filepath.Join(filepath.Dir(rel), u.Path))
		if file == ".." || strings.HasPrefix(file, "../") {
			return "leaves the repository"
		}
		if _, err := os.Stat(filepath.Join(root, file)); err != nil {
			return "no such file in the repository"
		}
	}
	if u.Fragment == "" || !strings.HasSuffix(file, ".md") {
		return ""
	}
	anchors, err := headingAnchors(filepath.Join(root, file))
	if err != nil {
		return err.Error()
	}
	if !anchors[u.Fragment] {
		return "no heading with anchor #" + u.Fragment + " in " + file
	}
	return ""
}

var notSlug = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)

// headingAnchors returns the anchors GitHub derives from the headings of
// a Markdown file: lower case, punctuation dropped, spaces as hyphens,
// repeats numbered -1, -2, ...
func headingAnchors(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		slug := strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(text), ""), " ", "-")
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, nil
}
