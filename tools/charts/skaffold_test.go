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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// EnvRequireSkaffold makes TestSkaffoldRender fail instead of skipping when
// the skaffold binary is not cached; `make test-charts` sets it after
// building skaffold. `make test` runs it only when a cached skaffold exists
// (a cold skaffold build takes longer than the rest of make test).
const EnvRequireSkaffold = "BROKKR_REQUIRE_SKAFFOLD"

// skaffold render of every config and profile, offline, with the images
// given as tags (nothing is built): the real skaffold reads skaffold.yaml,
// applies the profile's patches and renders the charts with helm.
func TestSkaffoldRender(t *testing.T) {
	bin, err := Tool(rootDir, "skaffold")
	if err != nil {
		if os.Getenv(EnvRequireSkaffold) != "" {
			t.Fatal(err)
		}
		t.Skipf("%v; the schema test above still validates skaffold.yaml (make test-charts builds skaffold and runs this)", err)
	}
	helmDir := filepath.Dir(helm(t))
	images := func(names ...string) string {
		var pairs []string
		for _, n := range names {
			pairs = append(pairs, "brokkr-"+n+"=registry.test/brokkr-"+n+":t1")
		}
		return strings.Join(pairs, ",")
	}
	broker := []string{"api", "auth", "templating", "work-order-scheduler", "webhook-dispatch"}
	home := t.TempDir()
	env := []string{"PATH=" + helmDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, "SKAFFOLD_UPDATE_CHECK=false", "KUBECONFIG=" + filepath.Join(home, "none"),
		"HELM_CACHE_HOME=" + filepath.Join(home, "helm-cache"), "HELM_CONFIG_HOME=" + filepath.Join(home, "helm-config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "helm-data")}
	for _, tc := range []struct {
		module, profile string
		images          []string
		check           func(t *testing.T, k map[string][]string, objs []*unstructured.Unstructured)
	}{
		{"broker", "dev", broker, func(t *testing.T, k map[string][]string, objs []*unstructured.Unstructured) {
			if len(k["Deployment"]) != 5 || len(k["StatefulSet"]) != 2 || len(k["HorizontalPodAutoscaler"]) != 0 {
				t.Errorf("dev renders %v", k)
			}
		}},
		{"broker", "production-like", broker, func(t *testing.T, k map[string][]string, objs []*unstructured.Unstructured) {
			if len(k["Deployment"]) != 5 || len(k["HorizontalPodAutoscaler"]) == 0 || len(k["NetworkPolicy"]) == 0 ||
				len(k["PodDisruptionBudget"]) == 0 || len(k["StatefulSet"]) != 2 || len(k["Ingress"]) != 0 {
				t.Errorf("production-like renders %v", k)
			}
		}},
		{"agent", "dev", []string{"agent"}, func(t *testing.T, k map[string][]string, objs []*unstructured.Unstructured) {
			if len(k["Deployment"]) != 1 || len(k["ClusterRole"]) != 1 {
				t.Errorf("agent renders %v", k)
			}
		}},
	} {
		t.Run(tc.module+"/"+tc.profile, func(t *testing.T) {
			cmd := exec.Command(bin, "render", "-m", tc.module, "-p", tc.profile, "--offline=true",
				"--images", images(tc.images...), "--digest-source=tag")
			cmd.Dir = rootDir
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("skaffold render: %v\n%s", err, stderr)
			}
			objs, err := Decode(string(out))
			if err != nil {
				t.Fatalf("skaffold render output does not parse: %v", err)
			}
			k := kinds(objs)
			tc.check(t, k, objs)
			// Every container of every Deployment runs the image skaffold was given.
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				for _, c := range cs {
					img, _ := c.(map[string]any)["image"].(string)
					if !strings.HasPrefix(img, "registry.test/brokkr-") || !strings.HasSuffix(img, ":t1") {
						t.Errorf("%s runs %q, not the image skaffold was given", o.GetName(), img)
					}
				}
			}
		})
	}
}
