package httpapi_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// TestErrorCodesPerResource: at least one failure per resource answers
// 0.9.1's stable code (docs/error-codes.md), which its SDKs match on, and
// keeps the seed's message.
func TestErrorCodesPerResource(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("codes", "c")
	g, other := e.CreateGenerator("codes-g"), e.CreateGenerator("codes-other")
	st := e.CreateStack(g.PAK, "codes-stack")
	obj, _ := e.Deploy(g.PAK, st, cmYAML("codes"))
	missing := uuid.NewString()

	for _, c := range []struct {
		name, method, path, pak string
		body                    any
		status                  int
		code                    string
	}{
		// Agents.
		{"unknown agent", "GET", v1 + "/agents/" + missing, e.AdminPAK, nil, 404, "agent_not_found"},
		{"invalid agent", "POST", v1 + "/agents", e.AdminPAK, map[string]string{"name": "", "cluster_name": "c"}, 400, "invalid_agent"},
		{"agent search without both", "GET", v1 + "/agents/?name=x", e.AdminPAK, nil, 400, "name_and_cluster_required"},
		{"admin only", "POST", v1 + "/agents", g.PAK, map[string]string{"name": "n", "cluster_name": "c"}, 403, "admin_required"},
		{"another agent", "GET", v1 + "/agents/" + a.ID, g.PAK, nil, 403, "agent_pak_mismatch"},
		{"agent id mismatch", "POST", v1 + "/agents/" + a.ID + "/labels", e.AdminPAK, map[string]string{"agent_id": missing, "label": "x"}, 400, "agent_id_mismatch"},
		{"agent label", "DELETE", v1 + "/agents/" + a.ID + "/labels/nope", e.AdminPAK, nil, 404, "agent_label_not_found"},
		{"agent annotation", "DELETE", v1 + "/agents/" + a.ID + "/annotations/nope", e.AdminPAK, nil, 404, "agent_annotation_not_found"},
		{"agent event", "GET", v1 + "/agent-events/" + missing, e.AdminPAK, nil, 404, "agent_event_not_found"},
		{"agent target", "DELETE", v1 + "/agents/" + a.ID + "/targets/" + st, e.AdminPAK, nil, 404, "agent_target_not_found"},
		// Generators.
		{"unknown generator", "GET", v1 + "/generators/" + missing, e.AdminPAK, nil, 404, "generator_not_found"},
		{"another generator", "GET", v1 + "/generators/" + g.ID, other.PAK, nil, 403, "generator_not_owned"},
		// Stacks.
		{"unknown stack", "GET", v1 + "/stacks/" + missing, e.AdminPAK, nil, 404, "stack_not_found"},
		{"another generator's stack", "GET", v1 + "/stacks/" + st, other.PAK, nil, 403, "stack_not_owned"},
		{"stack for another generator", "POST", v1 + "/stacks", g.PAK, map[string]string{"name": "x", "generator_id": other.ID}, 403, "stack_generator_mismatch"},
		{"stack id mismatch", "PUT", v1 + "/stacks/" + st, g.PAK, map[string]string{"id": missing}, 400, "stack_id_mismatch"},
		{"invalid label", "POST", v1 + "/stacks/" + st + "/labels", g.PAK, `"has space"`, 400, "invalid_label"},
		{"invalid annotation", "POST", v1 + "/stacks/" + st + "/annotations", g.PAK, map[string]string{"key": "k", "value": ""}, 400, "invalid_annotation"},
		{"stack label", "DELETE", v1 + "/stacks/" + st + "/labels/nope", g.PAK, nil, 404, "stack_label_not_found"},
		{"stack annotation", "DELETE", v1 + "/stacks/" + st + "/annotations/nope", g.PAK, nil, 404, "stack_annotation_not_found"},
		// Deployment objects.
		{"unknown object", "GET", v1 + "/deployment-objects/" + missing, e.AdminPAK, nil, 404, "deployment_object_not_found"},
		{"empty object", "POST", v1 + "/stacks/" + st + "/deployment-objects", g.PAK, map[string]string{"yaml_content": ""}, 400, "invalid_deployment_object"},
		{"object of another generator", "GET", v1 + "/deployment-objects/" + obj, other.PAK, nil, 403, "generator_not_associated"},
		{"object of an unassociated agent", "GET", v1 + "/deployment-objects/" + obj, a.PAK, nil, 403, "agent_not_associated"},
		// Templates.
		{"unknown template", "GET", v1 + "/templates/" + missing, e.AdminPAK, nil, 404, "template_not_found"},
		{"template syntax", "POST", v1 + "/templates", g.PAK, map[string]string{"name": "bad", "template_content": "{% if %}",
			"parameters_schema": `{"type": "object"}`}, 400, "invalid_template_syntax"},
		{"templates as agent", "GET", v1 + "/templates", a.PAK, nil, 403, "templates_not_accessible"},
		// Diagnostics.
		{"unknown diagnostic", "GET", v1 + "/diagnostics/" + missing, e.AdminPAK, nil, 404, "diagnostic_not_found"},
		// Webhooks.
		{"unknown webhook", "GET", v1 + "/webhooks/" + missing, e.AdminPAK, nil, 404, "webhook_not_found"},
		{"webhook without url", "POST", v1 + "/webhooks", e.AdminPAK, map[string]any{"name": "x", "url": " ", "event_types": []string{"*"}}, 400, "url_required"},
		{"webhook scheme", "POST", v1 + "/webhooks", e.AdminPAK, map[string]any{"name": "x", "url": "ftp://x", "event_types": []string{"*"}}, 400, "invalid_url_scheme"},
		{"webhook as generator", "GET", v1 + "/webhooks", g.PAK, nil, 403, "admin_required"},
		// Work orders.
		{"unknown work order", "GET", wo + "/" + missing, e.AdminPAK, nil, 404, "work_order_not_found"},
		{"no targeting", "POST", wo, e.AdminPAK, map[string]any{"work_type": "build", "yaml_content": jobYAML("j"), "targeting": map[string]any{}}, 400, "no_targeting_specified"},
		{"blank work type", "POST", wo, e.AdminPAK, map[string]any{"work_type": " ", "yaml_content": jobYAML("j"),
			"targeting": map[string]any{"agent_ids": []string{a.ID}}}, 400, "invalid_work_order"},
		{"unknown log entry", "GET", v1 + "/work-order-log/" + missing, e.AdminPAK, nil, 404, "work_order_log_entry_not_found"},
		// Deployment health.
		{"invalid health record", "PATCH", v1 + "/agents/" + a.ID + "/health-status", a.PAK, map[string]any{
			"deployment_objects": []map[string]any{{"id": obj, "status": "sparkling", "checked_at": time.Now().UTC().Format(time.RFC3339)}}}, 400, "invalid_health_record"},
		// Database-mapped.
		{"duplicate generator", "POST", v1 + "/generators", e.AdminPAK, map[string]string{"name": "codes-g"}, 409, "unique_violation"},
	} {
		wantErrorCode(t, e.Do(c.method, c.path, c.pak, c.body), c.status, c.code, c.name)
	}
}

// codePatterns find the stable codes the code sends: a Code field, a coded
// constructor, WithCode, the repositories' notFound/deleteOne, and the
// error table's general codes.
var codePatterns = []*regexp.Regexp{
	regexp.MustCompile(`Code:\s*"([a-z0-9_]+)"`),
	regexp.MustCompile(`(?:Invalid|Forbidden|NotFound|Conflict|Unprocessable)Code\(\s*"([a-z0-9_]+)"`),
	regexp.MustCompile(`WithCode\([^()]*(?:\([^()]*\))?[^()]*,\s*"([a-z0-9_]+)"\)`),
	regexp.MustCompile(`notFound\(err,\s*"([a-z0-9_]+)"`),
	regexp.MustCompile(`deleteOne\(ctx,\s*"([a-z0-9_]+)"`),
	regexp.MustCompile(`\{domain\.Err\w+, http\.Status\w+,\s*"([a-z0-9_]+)"`),
}

// TestEveryCodeIsCatalogued: every stable code written in the tree's Go
// sources is listed in docs/error-codes.md, so the catalogue clients read
// cannot drift from what the servers send.
func TestEveryCodeIsCatalogued(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "error-codes.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, dir := range []string{"pkg", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				strings.HasSuffix(path, ".gen.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, re := range codePatterns {
				for _, m := range re.FindAllSubmatch(src, -1) {
					found[string(m[1])] = path
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The patterns must keep finding what this file's other test asserts.
	for _, want := range []string{"agent_not_found", "admin_required", "invalid_template_syntax", "unique_violation", "not_found"} {
		if _, ok := found[want]; !ok {
			t.Fatalf("the scan found no %q: the patterns no longer match the code", want)
		}
	}
	var missing []string
	for code, path := range found {
		if !strings.Contains(string(doc), "`"+code+"`") {
			rel, _ := filepath.Rel(root, path)
			missing = append(missing, code+" ("+rel+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("codes sent but not listed in docs/error-codes.md:\n  %s", strings.Join(missing, "\n  "))
	}
}

// repoRoot is the directory holding go.work, above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}
