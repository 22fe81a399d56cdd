package charts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/brokkr-go/brokkr/tools/images"
)

// SkaffoldVersion is the skaffold release whose schema skaffold.yaml uses;
// keep it equal to SKAFFOLD_VERSION in tools/deploytools/build.sh.
const SkaffoldVersion = "v2.16.1"

func skaffoldDocs(t *testing.T) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(rootDir, "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	for _, d := range strings.Split(string(raw), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m)
	}
	return docs
}

// skaffold.yaml validates against the JSON schema published in the skaffold
// module (the same version tools/deploytools builds).
func TestSkaffoldYAMLMatchesSchema(t *testing.T) {
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/GoogleContainerTools/skaffold/v2@"+SkaffoldVersion).Output()
	if err != nil {
		t.Fatalf("go mod download skaffold: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %s", out)
	}
	docs := skaffoldDocs(t)
	version := strings.TrimPrefix(docs[0]["apiVersion"].(string), "skaffold/")
	schemaPath := filepath.Join(mod.Dir, "docs-v2/content/en/schemas", version+".json")
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("schema %s: %v", schemaPath, err)
	}
	for i, d := range docs {
		// Round-trip through JSON so numbers and maps have the validator's types.
		raw, _ := json.Marshal(d)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("skaffold.yaml document %d: %v", i, err)
		}
	}
	// The schema cannot see that the artifacts are the images of
	// build/images.yaml and that every artifact's image reaches its chart.
	spec, err := images.Load(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	var targets, want []string
	for _, d := range docs {
		build := d["build"].(map[string]any)
		releases := d["deploy"].(map[string]any)["helm"].(map[string]any)["releases"].([]any)
		tmpl, _ := json.Marshal(releases)
		for _, a := range build["artifacts"].([]any) {
			a := a.(map[string]any)
			docker := a["docker"].(map[string]any)
			target := docker["target"].(string)
			targets = append(targets, target)
			if a["image"] != "brokkr-"+target || docker["dockerfile"] != images.DockerfilePath {
				t.Errorf("artifact %v does not build %s from %s", a, "brokkr-"+target, images.DockerfilePath)
			}
			key := strings.ReplaceAll(a["image"].(string), "-", "_")
			if !strings.Contains(string(tmpl), "IMAGE_FULLY_QUALIFIED_"+key) && !strings.Contains(string(tmpl), "IMAGE_REPO_"+key) {
				t.Errorf("artifact %s is built but no release uses it", a["image"])
			}
		}
	}
	for _, im := range spec.Images {
		want = append(want, im.Name)
	}
	sort.Strings(targets)
	sort.Strings(want)
	if strings.Join(targets, ",") != strings.Join(want, ",") {
		t.Errorf("skaffold builds %v, build/images.yaml has %v", targets, want)
	}
}
