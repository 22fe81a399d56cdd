package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryIsSelfContained is the guard: no file of the checkout cites
// a document outside the repository, and every docs anchor cited exists.
func TestRepositoryIsSelfContained(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("%s is not the repository root: %v", root, err)
	}
	findings, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

// The outside documents' names are split so that this file passes the
// check it tests.
var (
	decisions = "DECISION" + "S"
	spec      = "shared" + "/spec"
)

func TestCheckFindsOutsideCitationsAndBrokenAnchors(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/compatibility.md", "# Compatibility\n\n## Wire format\n- <a id=\"check-order\"></a>401 first.\n"+
		"See [retries](webhooks.md#retries) and [missing](webhooks.md#nope) and [here](#wire-format).\n")
	write("docs/webhooks.md", "# Webhooks\n\n### Retries\n```\n# not a heading\n```\n")
	write("pkg/a/a.go", "package a\n\n// Role first (docs/compatibility.md#check-order).\n"+
		"// Order (docs/compatibility.md#wire-format), gone (docs/compatibility.md#gone).\n"+
		"// Missing file (docs/nowhere.md#x).\n")
	write("pkg/a/b.go", "package a\n\n// Old style ("+decisions+" 2).\n// See "+spec+"/api.md too.\n// And (broker.md §3.3).\n")
	write(".git/ignored.txt", decisions+" 1\n")
	write("pkg/a/blob.bin", "\x00"+decisions+" 1\n")
	write("pkg/a/bundle.js", strings.Repeat("x", 10001)+decisions+" 1\n")

	findings, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	want := []string{
		"docs/compatibility.md:5: links to docs/webhooks.md#nope, which has no such anchor",
		"pkg/a/a.go:4: cites docs/compatibility.md#gone, which has no such anchor",
		"pkg/a/a.go:5: cites docs/nowhere.md, which does not exist",
		"pkg/a/b.go:3: cites \"" + decisions + "\"",
		"pkg/a/b.go:4: cites \"" + spec + "\"",
		"pkg/a/b.go:5: cites \"broker.md §\"",
	}
	if len(got) != len(want) {
		t.Fatalf("findings:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("finding %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestAnchors(t *testing.T) {
	md := "# Title\n## Events (outbox)\n## Differences from Tera 1.20\n## Broker endpoints outside `/api/v1`\n" +
		"## Repeat\n## Repeat\n- <a id=\"agent-status-on-create\"></a>text\n```\n## in code\n```\n"
	a := Anchors([]byte(md))
	for _, want := range []string{"title", "events-outbox", "differences-from-tera-120",
		"broker-endpoints-outside-apiv1", "repeat", "repeat-1", "agent-status-on-create"} {
		if !a[want] {
			t.Errorf("anchor %q missing from %v", want, a)
		}
	}
	if a["in-code"] {
		t.Error("a heading inside a code fence became an anchor")
	}
}
