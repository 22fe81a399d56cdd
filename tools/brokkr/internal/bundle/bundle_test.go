package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a: 1\n", []string{"a: 1\n"}},
		{"---\na: 1\n---\n\n---\n# only a comment\n---\nb: 2\n...\n", []string{"a: 1\n", "b: 2\n"}},
		{"a: 1\r\n--- # doc\r\nb: 2", []string{"a: 1\n", "b: 2\n"}},
		{"key: |\n  ---not a separator\n", []string{"key: |\n  ---not a separator\n"}},
		{"", nil},
	} {
		got := Split(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ doc, err string }{
		{"apiVersion: v1\nkind: ConfigMap\n", ""},
		{"kind: ConfigMap\n", "missing apiVersion"},
		{"apiVersion: v1\n", "missing kind"},
		{"- a\n- b\n", "not valid YAML"},
		{"a: [\n", "not valid YAML"},
	} {
		err := Validate(tc.doc)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Validate(%q) = %v, want %q", tc.doc, err, tc.err)
		}
	}
}

func TestReadFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
	write("a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	write("notes.txt", "ignored")
	_ = os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	write("sub/c.yaml", "kind: broken\n")
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
	if got != want {
		t.Fatalf("Read:\n%s\nwant:\n%s", got, want)
	}
	sum := sha256.Sum256([]byte(want))
	if Checksum(got) != hex.EncodeToString(sum[:]) {
		t.Fatal("checksum is not the hex SHA-256 of the content")
	}
	write("c.yaml", "apiVersion: v1\nmetadata: {}\n")
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "c.yaml: document 1: missing kind") {
		t.Fatalf("invalid document: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "sub", "none")); err == nil {
		t.Fatal("missing path: no error")
	}
	empty := t.TempDir()
	if _, err := Read(empty); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Fatalf("empty folder: %v", err)
	}
}
