package stack

import (
	"strings"
	"testing"
)

func TestSplitYAML(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		kinds   []string
		indexes []int
		errSub  string
	}{
		{name: "single", src: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n", kinds: []string{"Namespace"}, indexes: []int{1}},
		{name: "multi with empty", src: "---\napiVersion: v1\nkind: Namespace\n---\n---\napiVersion: v1\nkind: ConfigMap\n", kinds: []string{"Namespace", "ConfigMap"}, indexes: []int{1, 3}},
		{name: "empty", src: "", kinds: nil},
		{name: "comment only", src: "# nothing\n", kinds: nil},
		{name: "alias of an earlier null", src: "&n\n---\nkind: A\n---\n*n\n", kinds: []string{"A"}, indexes: []int{2}},
		{name: "bad second doc", src: "kind: A\n---\nkind: [unclosed\n", errSub: "document 2"},
		{name: "scalar doc", src: "kind: A\n---\njust a string\n", errSub: "document 2: not a mapping"},
		{name: "list doc", src: "- a\n- b\n", errSub: "document 1: not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := SplitYAML(tt.src)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("err = %v, want containing %q", err, tt.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) != len(tt.kinds) {
				t.Fatalf("got %d docs, want %d", len(docs), len(tt.kinds))
			}
			for i, d := range docs {
				if d.Value["kind"] != tt.kinds[i] {
					t.Errorf("doc %d kind = %v, want %s", i, d.Value["kind"], tt.kinds[i])
				}
				if d.Index != tt.indexes[i] {
					t.Errorf("doc %d index = %d, want %d", i, d.Index, tt.indexes[i])
				}
				if !strings.Contains(d.Source, "kind:") {
					t.Errorf("doc %d source lost: %q", i, d.Source)
				}
			}
		})
	}
}

func FuzzSplitYAML(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Namespace\n",
		"---\n---\nkind: A\n---\nkind: B\n",
		"a: &x [1, *x]\n",
		"key: {a: [b, {c: d}]}\n",
		"!!binary foo",
		"? complex\n: value\n",
		"kind: [unclosed\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		docs, err := SplitYAML(src)
		if err != nil {
			return
		}
		for _, d := range docs {
			if d.Value == nil {
				t.Fatalf("nil value for doc %d", d.Index)
			}
			if d.Index < 1 {
				t.Fatalf("bad index %d", d.Index)
			}
		}
	})
}

// Issue 10 item 10: alias expansion is bounded; exactly MaxDocuments
// documents are accepted.
func TestSplitYAMLLimits(t *testing.T) {
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("kind: A\nx: &a v\nl:\n")
		for i := 0; i < n; i++ {
			b.WriteString("- *a\n")
		}
		return b.String()
	}
	if _, err := SplitYAML(aliases(MaxAliases)); err != nil {
		t.Fatalf("%d aliases: %v", MaxAliases, err)
	}
	if _, err := SplitYAML(aliases(100000)); err == nil || !strings.Contains(err.Error(), "too many YAML aliases") {
		t.Fatalf("100,000 aliases: %v", err)
	}
	// Few aliases of a big anchor (a billion-laughs shape) hit the expansion bound.
	var laughs strings.Builder
	laughs.WriteString("kind: A\nbig: &b [")
	for i := 0; i < 1000; i++ {
		laughs.WriteString("x,")
	}
	laughs.WriteString("x]\nl:\n")
	for i := 0; i < 200; i++ {
		laughs.WriteString("- *b\n")
	}
	if _, err := SplitYAML(laughs.String()); err == nil || !strings.Contains(err.Error(), "expand to too many nodes") {
		t.Fatalf("expansion: %v", err)
	}
	docs := func(n int) string { return strings.Repeat("---\nkind: A\n", n) }
	if got, err := SplitYAML(docs(MaxDocuments)); err != nil || len(got) != MaxDocuments {
		t.Fatalf("%d documents: %d, %v", MaxDocuments, len(got), err)
	}
	if _, err := SplitYAML(docs(MaxDocuments + 1)); err == nil || !strings.Contains(err.Error(), "too many YAML documents") {
		t.Fatalf("%d documents: %v", MaxDocuments+1, err)
	}
}
