package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// template validate runs the broker's own engine and schema validator.
func TestValidateTemplate(t *testing.T) {
	src := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\ndata:\n  replicas: \"{{ replicas }}\"\n"
	schema := `{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"replicas":{"type":"integer","default":2}}}`
	out, err := validateTemplate(context.Background(), src, schema, map[string]any{"name": "web"})
	if err != nil || !strings.Contains(out, "name: web") || !strings.Contains(out, `replicas: "2"`) {
		t.Fatalf("valid template: %q %v", out, err)
	}
	for _, tc := range []struct {
		src, schema string
		params      map[string]any
		want        string
	}{
		{src, schema, map[string]any{}, "parameters do not match the schema"},
		{src, schema, map[string]any{"name": "web", "replicas": "many"}, "parameters do not match the schema"},
		{"{% if %}", "", nil, "template syntax"},
		{src, `{"type": 12}`, map[string]any{"name": "x"}, "parameters schema"},
		{"kind: ConfigMap\n", "", nil, "rendered document 1: missing apiVersion"},
		{"{# nothing #}\n", "", nil, "renders no Kubernetes object"},
	} {
		if _, err := validateTemplate(context.Background(), tc.src, tc.schema, tc.params); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validateTemplate(%q, %q, %v) = %v, want %q", tc.src, tc.schema, tc.params, err, tc.want)
		}
	}
}

func TestLoadParams(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.yaml")
	_ = os.WriteFile(f, []byte("image:\n  repo: nginx\n  tag: \"1.0\"\nreplicas: 1\n"), 0o644)
	p, err := loadParams([]string{f}, []string{"image.tag=1.27", "replicas=3", "debug=true", "name=web", "quoted=\"3\""})
	if err != nil {
		t.Fatal(err)
	}
	img := p["image"].(map[string]any)
	if img["repo"] != "nginx" || img["tag"] != 1.27 || p["replicas"] != float64(3) || p["debug"] != true || p["name"] != "web" || p["quoted"] != "3" {
		t.Fatalf("params: %#v", p)
	}
	if _, err := loadParams(nil, []string{"novalue"}); err == nil {
		t.Fatal("--set without = accepted")
	}
}
