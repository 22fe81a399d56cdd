package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apidocs"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// specOp is one operation of api-spec/openapi.yaml with what the fuzzer
// needs: whether it takes a body, the body's property names, an example.
type specOp struct {
	method, path string
	body         bool
	props        []string
	example      any
}

func loadSpecOps(t *testing.T) []specOp {
	t.Helper()
	raw, err := apidocs.SpecJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schemas, _ := dig(doc, "components", "schemas").(map[string]any)
	var resolve func(s any, depth int) map[string]any
	resolve = func(s any, depth int) map[string]any {
		m, _ := s.(map[string]any)
		if ref, ok := m["$ref"].(string); ok && depth < 10 {
			return resolve(schemas[strings.TrimPrefix(ref, "#/components/schemas/")], depth+1)
		}
		return m
	}
	var propsOf func(s map[string]any, depth int, into map[string]bool)
	propsOf = func(s map[string]any, depth int, into map[string]bool) {
		if s == nil || depth > 5 {
			return
		}
		if p, ok := s["properties"].(map[string]any); ok {
			for k := range p {
				into[k] = true
			}
		}
		for _, k := range []string{"oneOf", "anyOf", "allOf"} {
			list, _ := s[k].([]any)
			for _, sub := range list {
				propsOf(resolve(sub, 0), depth+1, into)
			}
		}
	}
	paths, _ := doc["paths"].(map[string]any)
	var ops []specOp
	for p, item := range paths {
		if !strings.HasPrefix(p, "/api/v1/") {
			continue
		}
		for m, raw := range item.(map[string]any) {
			op, ok := raw.(map[string]any)
			if !ok || m == "parameters" {
				continue
			}
			o := specOp{method: strings.ToUpper(m), path: p}
			if media, ok := dig(op, "requestBody", "content", "application/json").(map[string]any); ok {
				o.body = true
				names := map[string]bool{}
				propsOf(resolve(media["schema"], 0), 0, names)
				for k := range names {
					o.props = append(o.props, k)
				}
				sort.Strings(o.props)
				if ex, ok := media["examples"].(map[string]any); ok {
					for _, v := range ex {
						if vm, ok := v.(map[string]any); ok {
							o.example = vm["value"]
							break
						}
					}
				}
				if ex, ok := media["example"]; ok {
					o.example = ex
				}
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// fuzzWorld is a fresh set of resources an operation can act on, so that
// requests with real ids get past the guards into the handlers.
type fuzzWorld struct {
	agent, other apitest.Agent
	gen          apitest.Generator
	stack, obj   string
	template     string
}

func newFuzzWorld(t *testing.T, e *apitest.Env) fuzzWorld {
	w := fuzzWorld{agent: e.CreateAgent(unique("fa"), "c"), other: e.CreateAgent(unique("fb"), "c"), gen: e.CreateGenerator(unique("fg"))}
	w.stack = e.CreateStack(w.gen.PAK, unique("fs"))
	w.obj, _ = e.Deploy(w.gen.PAK, w.stack, cmYAML("f"))
	e.Must(201, "POST", v1+"/agents/"+w.agent.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": w.stack})
	e.Must(201, "POST", v1+"/agents/"+w.agent.ID+"/labels", e.AdminPAK, `"env"`)
	e.Must(201, "POST", v1+"/stacks/"+w.stack+"/annotations", e.AdminPAK, map[string]string{"key": "k", "value": "v"})
	var tpl struct {
		ID string `json:"id"`
	}
	e.Must(201, "POST", v1+"/templates", w.gen.PAK, map[string]any{"name": unique("ft"), "template_content": cmYAML("{{ n }}"),
		"parameters_schema": `{"type":"object","properties":{"n":{"type":"string","default":"x"}}}`}).JSON(t, &tpl)
	w.template = tpl.ID
	return w
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// realPath fills the path's parameters with the world's ids.
func (w fuzzWorld) realPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		prev := segs[i-1]
		switch {
		case s == "{label}":
			segs[i] = "env"
		case s == "{key}":
			segs[i] = "k"
		case s == "{stack_id}", prev == "stacks":
			segs[i] = w.stack
		case prev == "agents":
			segs[i] = w.agent.ID
		case prev == "generators":
			segs[i] = w.gen.ID
		case prev == "templates":
			segs[i] = w.template
		case prev == "deployment-objects":
			segs[i] = w.obj
		default:
			segs[i] = "5b6c7d8e-0000-4000-8000-000000000001"
		}
	}
	return strings.Join(segs, "/")
}

type fuzzCase struct {
	name, path, body, contentType string
}

// bodyCases are the malformed bodies sent to an operation that takes one.
func bodyCases(op specOp, perField bool) []fuzzCase {
	raw := []string{`{"a":`, `{`, `[]`, `"x"`, `123`, `null`, `true`, `{"a":1} trailing`,
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "{\"\xff\xfe\":1}", `{"\u0000":1}`}
	var out []fuzzCase
	for _, r := range raw {
		out = append(out, fuzzCase{name: "raw " + clipName(r), body: r})
	}
	bad := []string{`"\u0000"`, "\"\xff\xfe\"", `1e400`, `9223372036854775808`, `9223372036854775807`,
		`-9223372036854775809`, `-1`, `[]`, `{}`, `"` + strings.Repeat("x", 70000) + `"`, `"not-a-uuid"`, `null`}
	all := func(v string) string {
		var parts []string
		for _, p := range op.props {
			parts = append(parts, fmt.Sprintf("%q:%s", p, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	for _, v := range bad {
		out = append(out, fuzzCase{name: "all fields " + clipName(v), body: all(v)}, fuzzCase{name: "bare " + clipName(v), body: v})
	}
	if perField {
		base, _ := op.example.(map[string]any)
		for _, p := range op.props {
			for _, v := range bad {
				m := map[string]json.RawMessage{}
				for k, val := range base {
					b, _ := json.Marshal(val)
					m[k] = b
				}
				m[p] = json.RawMessage(v)
				var buf bytes.Buffer
				buf.WriteString("{")
				first := true
				for k, val := range m {
					if !first {
						buf.WriteString(",")
					}
					first = false
					fmt.Fprintf(&buf, "%q:%s", k, val)
				}
				buf.WriteString("}")
				out = append(out, fuzzCase{name: p + "=" + clipName(v), body: buf.String()})
			}
		}
	}
	out = append(out, fuzzCase{name: "text/plain", body: `{}`, contentType: "text/plain"})
	return out
}

func clipName(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// TestOpenAPIFuzz walks api-spec/openapi.yaml and sends, for every
// operation and role, malformed JSON, wrong types, NUL and invalid UTF-8,
// huge numbers, bad ids and oversize bodies: never a 5xx, never a dropped
// connection, always a JSON error body (issue 10).
func TestOpenAPIFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	t.Parallel()
	e := apitest.New(t)
	ops := loadSpecOps(t)
	if len(ops) < 80 {
		t.Fatalf("only %d operations in the spec", len(ops))
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var sent, failures int
	send := func(op specOp, role, pak string, c fuzzCase) {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(op.method, e.URL+c.path, body)
		if err != nil {
			// A path the client refuses to send (e.g. "%zz") is no test.
			return
		}
		if c.body != "" {
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
		}
		if pak != "" {
			req.Header.Set("Authorization", "Bearer "+pak)
		}
		sent++
		resp, err := client.Do(req)
		what := fmt.Sprintf("%s %s as %s, %s", op.method, c.path, role, c.name)
		if err != nil {
			failures++
			t.Errorf("%s: connection failed: %v", what, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 500:
			failures++
			t.Errorf("%s: status %d: %.300s", what, resp.StatusCode, b)
		case resp.StatusCode >= 400:
			var m map[string]any
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &m) != nil {
				failures++
				t.Errorf("%s: status %d without a JSON body: %.200q", what, resp.StatusCode, b)
			} else if msg, _ := m["error"].(string); msg == "" {
				failures++
				t.Errorf("%s: status %d without an error message: %.200s", what, resp.StatusCode, b)
			}
		}
	}
	badIDs := []string{"not-a-uuid", "%ff%fe", "%00", "99999999999999999999999", "00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc"}
	oversize := `{"x":"` + strings.Repeat("a", 3<<20) + `"}`
	for _, op := range ops {
		if failures > 20 {
			t.Fatal("too many failures; stopping")
		}
		w := newFuzzWorld(t, e)
		roles := []struct{ name, pak string }{
			{"admin", e.AdminPAK}, {"agent", w.agent.PAK}, {"other agent", w.other.PAK}, {"generator", w.gen.PAK},
			{"none", ""}, {"garbage PAK", "brokkr_x_\u00ff"},
		}
		real := w.realPath(op.path)
		// Bad ids in every path parameter, and junk in the query string.
		for _, id := range badIDs {
			p := pathParam.ReplaceAllString(op.path, id)
			if p == op.path {
				continue
			}
			for _, r := range roles[:2] {
				send(op, r.name, r.pak, fuzzCase{name: "bad id " + id, path: p, body: map[bool]string{true: "{}"}[op.body]})
			}
		}
		query := "?limit=-1&offset=99999999999999999999&status=%00&name=%ff&cluster_name=x&wait=abc&since=yesterday&page=1e400"
		for _, r := range roles {
			send(op, r.name, r.pak, fuzzCase{name: "junk query", path: real + query, body: map[bool]string{true: "{}"}[op.body]})
		}
		if !op.body && op.method == http.MethodGet {
			continue
		}
		for _, r := range roles[:4] {
			perField := r.name == "admin" || r.name == "generator"
			for _, c := range bodyCases(op, perField) {
				c.path = real
				send(op, r.name, r.pak, c)
			}
		}
		send(op, "admin", e.AdminPAK, fuzzCase{name: "oversize body", path: real, body: oversize})
	}
	t.Logf("%d operations, %d requests", len(ops), sent)
}
