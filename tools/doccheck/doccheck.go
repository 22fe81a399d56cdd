// Package doccheck keeps the project's documentation self-contained: no
// tracked file may cite a document outside the repository (the working
// notes the project was built from), and every citation of a document
// anchor in the repository ("docs/compatibility.md#check-order",
// "[webhooks](webhooks.md#retries)") must name a file and an anchor that
// exist. Its test runs over the whole checkout in `make test`.
package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Finding is one offending line.
type Finding struct {
	File string // slash-separated, relative to the root
	Line int
	Msg  string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Msg) }

// outside matches citations of documents that are not in the repository:
// the decision list and contracts the project was written from, cited by
// number or by path. The words are split so this file does not match
// itself.
var outside = regexp.MustCompile(`\b` + "DECISION" + `S?\b|` + "shared" + `/spec|\.\./` + "shared" + `\b|\bspec/(api|broker|agent)\.md|\b(api|broker|agent)\.md\s+§`)

// pathCite matches a repository path with an anchor, as comments write
// them: docs/x.md#anchor, services/agent/README.md#anchor.
var pathCite = regexp.MustCompile(`\b((?:docs|services/[a-z-]+)/[A-Za-z0-9_./-]*\.md)#([A-Za-z0-9_-]+)`)

// mdLink matches a relative Markdown link with an anchor: (x.md#a), (#a).
var mdLink = regexp.MustCompile(`\]\(([A-Za-z0-9_./-]*\.md)?#([A-Za-z0-9_-]+)\)`)

var (
	explicitAnchor = regexp.MustCompile(`<a id="([^"]+)"`)
	heading        = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	fence          = regexp.MustCompile("^\\s*(```|~~~)")
)

// skipDir reports directories not to read: hidden ones (.git, .brokkr),
// vendored web assets, and this package, whose sources and test cases
// spell out what they look for.
func skipDir(rel, name string) bool {
	return strings.HasPrefix(name, ".") || name == "node_modules" || rel == "tools/doccheck"
}

// textFile reports whether a file is worth reading: not too large, not
// binary, not minified (a line over 10,000 bytes: the vendored Swagger UI).
func textFile(data []byte) bool {
	if len(data) > 4<<20 || bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		if i > 10000 {
			return false
		}
		data = data[min(i+1, len(data)):]
	}
	return true
}

// Check walks root and returns every citation of a document outside the
// repository and every anchor citation that does not resolve.
func Check(root string) ([]Finding, error) {
	anchors := map[string]map[string]bool{} // file → anchors, loaded on demand
	anchorsOf := func(rel string) (map[string]bool, bool) {
		if a, ok := anchors[rel]; ok {
			return a, a != nil
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			anchors[rel] = nil
			return nil, false
		}
		a := Anchors(data)
		anchors[rel] = a
		return a, true
	}
	var out []Finding
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != root && skipDir(rel, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !textFile(data) {
			return nil
		}
		isMD := strings.HasSuffix(rel, ".md")
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			// Every pattern below needs one of these; most lines have none.
			if !strings.Contains(line, ".md") && !strings.Contains(line, "DECISION") && !strings.Contains(line, "shared") {
				continue
			}
			if m := outside.FindString(line); m != "" {
				out = append(out, Finding{rel, n, fmt.Sprintf("cites %q, a document outside the repository; cite a docs/ anchor instead", m)})
			}
			for _, m := range pathCite.FindAllStringSubmatch(line, -1) {
				target := strings.TrimSuffix(m[1], ".")
				if a, ok := anchorsOf(target); !ok {
					out = append(out, Finding{rel, n, fmt.Sprintf("cites %s, which does not exist", target)})
				} else if !a[m[2]] {
					out = append(out, Finding{rel, n, fmt.Sprintf("cites %s#%s, which has no such anchor", target, m[2])})
				}
			}
			if !isMD {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := rel
				if m[1] != "" {
					target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(rel), m[1])))
				}
				if a, ok := anchorsOf(target); !ok {
					out = append(out, Finding{rel, n, fmt.Sprintf("links to %s, which does not exist", target)})
				} else if !a[m[2]] {
					out = append(out, Finding{rel, n, fmt.Sprintf("links to %s#%s, which has no such anchor", target, m[2])})
				}
			}
		}
		return sc.Err()
	})
	return out, err
}

// Anchors returns the anchors a Markdown document defines: explicit
// <a id="…"> tags and the ids GitHub derives from headings (lower case,
// punctuation dropped, spaces to hyphens, "-1", "-2" … for repeats).
// Headings inside fenced code blocks do not count.
func Anchors(md []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(string(md), "\n") {
		for _, m := range explicitAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			slug := Slug(m[1])
			if k := seen[slug]; k > 0 {
				out[fmt.Sprintf("%s-%d", slug, k)] = true
			} else {
				out[slug] = true
			}
			seen[slug]++
		}
	}
	return out
}

// Slug is GitHub's heading id: lower case; letters, digits, spaces,
// hyphens and underscores kept; spaces become hyphens.
func Slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
