package charts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// The real skaffold reads skaffold.yaml and applies each profile
// (`skaffold diagnose --yaml-only`, offline, nothing built); the effective
// helm release it prints is then rendered with helm exactly as skaffold
// would deploy it (values files, setValues, setValueTemplates with the
// images given as tags); then the real `skaffold render` of the profile runs
// with helm 3 (renderWithSkaffold).
func TestSkaffoldRender(t *testing.T) {
	bin, err := Tool(rootDir, "skaffold")
	if err != nil {
		if os.Getenv(EnvRequireSkaffold) != "" {
			t.Fatal(err)
		}
		t.Skipf("%v; the schema test above still validates skaffold.yaml (make test-charts builds skaffold and runs this)", err)
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "SKAFFOLD_UPDATE_CHECK=false", "KUBECONFIG=" + filepath.Join(home, "none")}
	tmplRE := regexp.MustCompile(`\{\{\.IMAGE_(FULLY_QUALIFIED|REPO|TAG)_([a-z_]+)\}\}`)
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(rootDir, p)
	}
	for _, tc := range []struct {
		module, profile string
		values          string // the values file the profile must select
		check           func(t *testing.T, k map[string][]string)
	}{
		{"broker", "dev", "development.yaml", func(t *testing.T, k map[string][]string) {
			if len(k["Deployment"]) != 5 || len(k["StatefulSet"]) != 2 || len(k["HorizontalPodAutoscaler"]) != 0 {
				t.Errorf("dev renders %v", k)
			}
		}},
		{"broker", "production-like", "production.yaml", func(t *testing.T, k map[string][]string) {
			if len(k["Deployment"]) != 5 || len(k["HorizontalPodAutoscaler"]) == 0 || len(k["NetworkPolicy"]) == 0 ||
				len(k["PodDisruptionBudget"]) == 0 || len(k["StatefulSet"]) != 2 || len(k["Ingress"]) != 0 ||
				len(k["ServiceMonitor"]) != 0 {
				t.Errorf("production-like renders %v", k)
			}
		}},
		{"agent", "dev", "", func(t *testing.T, k map[string][]string) {
			if len(k["Deployment"]) != 1 || len(k["ClusterRole"]) != 1 {
				t.Errorf("agent renders %v", k)
			}
		}},
	} {
		t.Run(tc.module+"/"+tc.profile, func(t *testing.T) {
			cmd := exec.Command(bin, "diagnose", "-m", tc.module, "-p", tc.profile, "--yaml-only")
			cmd.Dir = rootDir
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("skaffold diagnose: %v\n%s", err, stderr)
			}
			var cfg struct {
				Deploy struct {
					Helm struct {
						Releases []struct {
							Name              string            `json:"name"`
							ChartPath         string            `json:"chartPath"`
							ValuesFiles       []string          `json:"valuesFiles"`
							SetValues         map[string]string `json:"setValues"`
							SetValueTemplates map[string]string `json:"setValueTemplates"`
						} `json:"releases"`
					} `json:"helm"`
				} `json:"deploy"`
			}
			if err := yaml.Unmarshal(out, &cfg); err != nil || len(cfg.Deploy.Helm.Releases) != 1 {
				t.Fatalf("skaffold diagnose printed no single helm release (%v):\n%s", err, out)
			}
			r := cfg.Deploy.Helm.Releases[0]
			if tc.values != "" && (len(r.ValuesFiles) != 1 || filepath.Base(r.ValuesFiles[0]) != tc.values) {
				t.Errorf("profile %s selects values %v, want %s", tc.profile, r.ValuesFiles, tc.values)
			}
			args := []string{"template", r.Name, abs(r.ChartPath), "--namespace", "brokkr"}
			for _, f := range r.ValuesFiles {
				args = append(args, "-f", abs(f))
			}
			for k, v := range r.SetValues {
				args = append(args, "--set", k+"="+v)
			}
			for k, v := range r.SetValueTemplates {
				img := tmplRE.ReplaceAllStringFunc(v, func(m string) string {
					sub := tmplRE.FindStringSubmatch(m)
					repo := "registry.test/" + strings.ReplaceAll(sub[2], "_", "-")
					switch sub[1] {
					case "REPO":
						return repo
					case "TAG":
						return "t1"
					}
					return repo + ":t1"
				})
				if img == v {
					t.Fatalf("setValueTemplates %s=%s names no image", k, v)
				}
				args = append(args, "--set", k+"="+img)
			}
			manifest, err := Run(nil, helm(t), args...)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(manifest)
			if err != nil {
				t.Fatalf("rendered YAML does not parse: %v", err)
			}
			tc.check(t, kinds(objs))
			wantSkaffoldImages(t, "helm template", objs)
			renderWithSkaffold(t, bin, env, tc.module, tc.profile, tc.check)
		})
	}
}

// renderWithSkaffold runs the real `skaffold render` of a profile, offline,
// with the images given as tags (nothing is built), and checks what it
// renders as the helm-template path above does. skaffold v2.16.1 drives
// helm 3 only (it calls `helm version --client` and passes itself as
// --post-renderer, both refused by helm 4), so it runs with the cached
// helm 3 first on PATH (tools/deploytools/build.sh helm3).
func renderWithSkaffold(t *testing.T, bin string, env []string, module, profile string, check func(*testing.T, map[string][]string)) {
	t.Helper()
	helm3, err := Tool(rootDir, "helm3")
	if err != nil {
		if os.Getenv(EnvRequireSkaffold) != "" {
			t.Fatal(err)
		}
		t.Logf("skaffold render not run: %v", err)
		return
	}
	spec, err := images.Load(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, im := range spec.Images {
		tags = append(tags, "brokkr-"+im.Name+"=registry.test/brokkr-"+im.Name+":t1")
	}
	cmd := exec.Command(bin, "render", "-m", module, "-p", profile, "--offline=true", "--digest-source=tag",
		"--images="+strings.Join(tags, ","))
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), append(env, "PATH="+filepath.Dir(helm3)+string(os.PathListSeparator)+os.Getenv("PATH"))...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skaffold render -m %s -p %s: %v\n%s", module, profile, err, stderr.String())
	}
	objs, err := Decode(string(out))
	if err != nil {
		t.Fatalf("skaffold render output does not parse: %v", err)
	}
	check(t, kinds(objs))
	wantSkaffoldImages(t, "skaffold render", objs)
}

// wantSkaffoldImages checks that every Deployment runs the image skaffold
// builds for it (registry.test/brokkr-<service>:t1, the tags both paths give).
func wantSkaffoldImages(t *testing.T, path string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		img, _ := cs[0].(map[string]any)["image"].(string)
		if !strings.HasPrefix(img, "registry.test/brokkr-") || !strings.HasSuffix(img, ":t1") {
			t.Errorf("%s: %s runs %q, not the image skaffold builds", path, o.GetName(), img)
		}
	}
}
