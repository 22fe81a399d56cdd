// Package bundle turns a folder of Kubernetes manifests (or one file) into
// the single multi-document YAML stream that becomes a stack's deployment
// object, and the checksum the broker computes for it.
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Read loads path: a directory contributes its top-level *.yaml and *.yml
// files in name order (subdirectories are ignored), a file itself. Every
// document must be a mapping with apiVersion and kind; empty documents are
// dropped. The documents are joined with "---" lines.
func Read(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading bundle: %w", err)
	}
	var files []string
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return "", fmt.Errorf("reading bundle: %w", err)
		}
		for _, e := range entries {
			n := e.Name()
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
					files = append(files, filepath.Join(path, n))
				}
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return "", fmt.Errorf("reading bundle: no *.yaml or *.yml files in %s", path)
		}
	} else {
		files = []string{path}
	}
	var docs []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading bundle: %w", err)
		}
		for i, doc := range Split(string(data)) {
			if err := Validate(doc); err != nil {
				return "", fmt.Errorf("%s: document %d: %w", f, i+1, err)
			}
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return "", fmt.Errorf("reading bundle: %s holds no Kubernetes objects", path)
	}
	return strings.Join(docs, "---\n"), nil
}

// Split cuts a YAML stream at its "---" separator lines and drops
// documents that hold nothing but blank lines and comments. Each document is
// returned with one trailing newline.
func Split(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var docs []string
	var cur []string
	flush := func() {
		doc := strings.TrimRight(strings.Join(cur, "\n"), " \t\n")
		cur = cur[:0]
		if !empty(doc) {
			docs = append(docs, doc+"\n")
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") {
			flush()
			continue
		}
		if line == "..." {
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

func empty(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// Validate checks that one document is a mapping with apiVersion and kind.
func Validate(doc string) error {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if m == nil {
		return fmt.Errorf("not a YAML mapping")
	}
	for _, k := range []string{"apiVersion", "kind"} {
		v, ok := m[k].(string)
		if !ok || strings.TrimSpace(v) == "" {
			return fmt.Errorf("missing %s", k)
		}
	}
	return nil
}

// Checksum is the lowercase hex SHA-256 of the content, as the broker
// stores it in yaml_checksum.
func Checksum(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}
