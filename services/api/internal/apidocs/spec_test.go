package apidocs

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// Structural checks of the contract that a generic YAML parse would miss.

func specDoc(t *testing.T) map[string]any {
	t.Helper()
	raw, err := SpecJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// lookup resolves a local JSON pointer such as #/components/schemas/Agent.
func lookup(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref follows a $ref, if any.
func deref(doc map[string]any, v any) map[string]any {
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, _ := lookup(doc, ref)
		m, _ = target.(map[string]any)
	}
	return m
}

func TestSpecRefsResolve(t *testing.T) {
	doc := specDoc(t)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, ok := lookup(doc, ref); !ok {
					t.Errorf("%s: unresolved $ref %q", path, ref)
				}
			}
			for k, c := range x {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range x {
				walk(path+"[]", c)
			}
		}
	}
	walk("#", doc)
}

func TestSpecOperationsComplete(t *testing.T) {
	doc := specDoc(t)
	paths := doc["paths"].(map[string]any)
	param := regexp.MustCompile(`\{([^{}/]+)\}`)
	for p, rawItem := range paths {
		item := rawItem.(map[string]any)
		for _, m := range httpMethods {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			op := rawOp.(map[string]any)
			name := strings.ToUpper(m) + " " + p
			for _, field := range []string{"operationId", "summary", "tags", "responses"} {
				if _, ok := op[field]; !ok {
					t.Errorf("%s: no %s", name, field)
				}
			}

			// Every path template parameter is declared (on the item or the operation).
			declared := map[string]bool{}
			for _, list := range []any{item["parameters"], op["parameters"]} {
				ps, _ := list.([]any)
				for _, rp := range ps {
					pm := deref(doc, rp)
					if pm["in"] == "path" {
						declared[pm["name"].(string)] = true
					}
				}
			}
			for _, sub := range param.FindAllStringSubmatch(p, -1) {
				if !declared[sub[1]] {
					t.Errorf("%s: path parameter %q not declared", name, sub[1])
				}
			}

			responses := op["responses"].(map[string]any)
			has := func(codes ...string) {
				for _, c := range codes {
					if _, ok := responses[c]; !ok {
						t.Errorf("%s: no %s response", name, c)
					}
				}
			}
			// Error responses are JSON {"error": ...}.
			for code, rawResp := range responses {
				if code[0] < '4' {
					continue
				}
				if !strings.HasPrefix(p, "/api/v1/") {
					continue
				}
				resp := deref(doc, rawResp)
				content, _ := resp["content"].(map[string]any)
				if _, ok := content["application/json"]; !ok || len(content) != 1 {
					t.Errorf("%s: %s response is not JSON-only", name, code)
				}
			}
			if !strings.HasPrefix(p, "/api/v1/") {
				if sec, ok := op["security"].([]any); !ok || len(sec) != 0 {
					t.Errorf("%s: root route must have `security: []`", name)
				}
				continue
			}
			if _, ok := op["security"]; ok {
				t.Errorf("%s: /api/v1 routes use the global PAK security", name)
			}
			has("401", "429", "500", "503")
			if strings.Contains(p, "{") {
				has("400") // a path id that is not a UUID
			}
			if _, ok := op["requestBody"]; ok {
				has("400", "413", "415", "422")
			}
			if m == "delete" {
				has("204", "404")
			}
		}
	}
}
