package httpapi_test

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

// who is the caller of one cell of the role matrix.
type who int

const (
	asAdmin       who = iota
	asOwnAgent        // the agent in the path, or an agent associated with the stack
	asOtherAgent      // an unrelated agent
	asOwnGen          // the generator in the path, or the owner of the stack
	asOtherGen        // an unrelated generator
	asInactiveGen     // a generator deactivated by the admin: 401 everywhere
	numWho
)

var whoNames = [numWho]string{"admin", "own agent", "other agent", "own generator", "other generator", "deactivated generator"}

// matrixFixture is the world the role matrix runs in: agent A targets stack
// S of generator G; agent B and generator H are strangers to both.
type matrixFixture struct {
	e               *apitest.Env
	a, b            apitest.Agent
	aName, aCluster string
	g, h, inactive  apitest.Generator
	stack           string
	object          string
	event           string
	tpl             string
}

func newMatrixFixture(t *testing.T) *matrixFixture {
	e := apitest.New(t)
	f := &matrixFixture{e: e, aName: "matrix-a", aCluster: "cluster-a"}
	f.a = e.CreateAgent(f.aName, f.aCluster)
	f.b = e.CreateAgent("matrix-b", "cluster-b")
	f.g = e.CreateGenerator("matrix-g")
	f.h = e.CreateGenerator("matrix-h")
	f.inactive = e.CreateGenerator("matrix-inactive")
	e.CreateStack(f.inactive.PAK, "matrix-inactive-stack")
	e.Must(200, "PUT", "/api/v1/generators/"+f.inactive.ID, e.AdminPAK, map[string]any{"is_active": false})
	f.stack = e.CreateStack(f.g.PAK, "matrix-stack")
	e.Must(201, "POST", "/api/v1/stacks/"+f.stack+"/labels", f.g.PAK, `"matrix"`)
	e.Must(201, "POST", "/api/v1/stacks/"+f.stack+"/annotations", f.g.PAK, map[string]string{"key": "tier", "value": "1"})
	e.Must(201, "POST", "/api/v1/agents/"+f.a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": f.stack})
	e.Must(201, "POST", "/api/v1/agents/"+f.a.ID+"/labels", e.AdminPAK, `"matrix-agent"`)
	e.Must(201, "POST", "/api/v1/agents/"+f.a.ID+"/annotations", e.AdminPAK, map[string]string{"key": "zone", "value": "a"})
	f.object, _ = e.Deploy(f.g.PAK, f.stack, cmYAML("matrix"))
	var ev struct {
		ID string `json:"id"`
	}
	e.Must(201, "POST", "/api/v1/agents/"+f.a.ID+"/events", f.a.PAK, map[string]any{
		"deployment_object_id": f.object, "event_type": "DEPLOY", "status": "FAILURE", "message": "x"}).JSON(t, &ev)
	f.event = ev.ID
	return f
}

func (f *matrixFixture) pak(w who) string {
	switch w {
	case asAdmin:
		return f.e.AdminPAK
	case asOwnAgent:
		return f.a.PAK
	case asOtherAgent:
		return f.b.PAK
	case asOwnGen:
		return f.g.PAK
	case asInactiveGen:
		return f.inactive.PAK
	default:
		return f.h.PAK
	}
}

// call is one request of the matrix; pak "" means the caller's usual PAK.
type call struct {
	path string
	body any
	pak  string
}

type roleRow struct {
	method, route string
	// want is the expected status per caller, indexed by who.
	want  [numWho]int
	build func(f *matrixFixture, w who) call
}

const v1 = "/api/v1"

// Expected-status shorthands.
var (
	adminOnly        = [numWho]int{200, 403, 403, 403, 403}
	adminOnly204     = [numWho]int{204, 403, 403, 403, 403}
	adminOrOwnAgent  = [numWho]int{200, 200, 403, 403, 403}
	adminOrOwnGen    = [numWho]int{200, 403, 403, 200, 403}
	adminOrOwnGen204 = [numWho]int{204, 403, 403, 204, 403}
	// Creates answer 201, as 0.9.1 does (docs/compatibility.md#create-status).
	adminOnly201       = [numWho]int{201, 403, 403, 403, 403}
	adminOrOwnAgent201 = [numWho]int{201, 201, 403, 403, 403}
	adminOrOwnGen201   = [numWho]int{201, 403, 403, 201, 403}
	adminOrOwnGen404   = [numWho]int{404, 403, 403, 404, 403}
	// stack readers: admin, the owning generator and an associated agent.
	stackReaders = [numWho]int{200, 200, 403, 200, 403}
	everyone     = [numWho]int{200, 200, 200, 200, 200}
)

// templateBody is a valid template create/update body.
func templateBody(name string) map[string]string {
	return map[string]string{
		"name":              name,
		"template_content":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: default\n",
		"parameters_schema": `{"type": "object", "properties": {"name": {"type": "string", "default": "tpl"}}}`,
	}
}

// newTemplate creates a template owned by generator G and returns its id.
func (f *matrixFixture) newTemplate(name string) string {
	var out struct {
		ID string `json:"id"`
	}
	f.e.Must(201, "POST", v1+"/templates", f.g.PAK, templateBody(name)).JSON(f.e.T, &out)
	return out.ID
}

// template returns the fixture's template owned by G, creating it once.
func (f *matrixFixture) template() string {
	if f.tpl == "" {
		f.tpl = f.newTemplate(unique("matrix-tpl"))
	}
	return f.tpl
}

// diagnostic creates a diagnostic request for agent A on the fixture's
// object, claimed by A when state is "claimed".
func (f *matrixFixture) diagnostic(state string) string {
	var out struct {
		ID string `json:"id"`
	}
	f.e.Must(201, "POST", v1+"/deployment-objects/"+f.object+"/diagnostics", f.e.AdminPAK,
		map[string]any{"agent_id": f.a.ID}).JSON(f.e.T, &out)
	if state == "claimed" {
		f.e.Must(200, "POST", v1+"/diagnostics/"+out.ID+"/claim", f.a.PAK, nil)
	}
	return out.ID
}

func templatePath(suffix string) func(*matrixFixture, who) call {
	return func(f *matrixFixture, _ who) call { return call{path: v1 + "/templates/" + f.template() + suffix} }
}

func path(p string) func(*matrixFixture, who) call {
	return func(*matrixFixture, who) call { return call{path: v1 + p} }
}

// roleRows is the matrix: every /api/v1 route with its expected status per
// caller (the docs' role table as adapted in docs/compatibility.md#identities).
// Rows that change state
// build fresh resources per call so the callers do not disturb each other.
func roleRows() []roleRow {
	agentPath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call { return call{path: v1 + "/agents/" + f.a.ID + suffix} }
	}
	stackPath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call { return call{path: v1 + "/stacks/" + f.stack + suffix} }
	}
	genPath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call { return call{path: v1 + "/generators/" + f.g.ID + suffix} }
	}
	rows := []roleRow{
		{"POST", "/auth/pak", everyone, path("/auth/pak")},

		{"GET", "/paks", adminOnly, path("/paks")},
		// A generator lists the agents registered with it (0.9.1).
		{"GET", "/agents", [numWho]int{200, 403, 403, 200, 200}, path("/agents")},
		{"POST", "/agents", adminOnly201, func(*matrixFixture, who) call {
			return call{path: v1 + "/agents", body: map[string]string{"name": unique("a"), "cluster_name": "c"}}
		}},
		{"GET", "/agents/", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/?name=" + url.QueryEscape(f.aName) + "&cluster_name=" + url.QueryEscape(f.aCluster)}
		}},
		{"GET", "/agents/:id", adminOrOwnAgent, agentPath("")},
		{"PUT", "/agents/:id", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID, body: map[string]string{"cluster_name": f.aCluster}}
		}},
		{"DELETE", "/agents/:id", adminOnly204, func(f *matrixFixture, w who) call {
			x := f.e.CreateAgent(unique("del"), "c")
			c := call{path: v1 + "/agents/" + x.ID}
			if w == asOwnAgent {
				c.pak = x.PAK
			}
			return c
		}},
		{"GET", "/agents/:id/events", adminOrOwnAgent, agentPath("/events")},
		{"POST", "/agents/:id/events", adminOrOwnAgent201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/events", body: map[string]any{
				"deployment_object_id": f.object, "event_type": "DEPLOY", "status": "FAILURE"}}
		}},
		{"GET", "/agents/:id/labels", adminOrOwnAgent, agentPath("/labels")},
		{"POST", "/agents/:id/labels", adminOnly201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/labels", body: `"` + unique("l") + `"`}
		}},
		{"DELETE", "/agents/:id/labels/:label", adminOnly204, func(f *matrixFixture, _ who) call {
			l := unique("l")
			f.e.Must(201, "POST", v1+"/agents/"+f.a.ID+"/labels", f.e.AdminPAK, `"`+l+`"`)
			return call{path: v1 + "/agents/" + f.a.ID + "/labels/" + l}
		}},
		{"GET", "/agents/:id/annotations", adminOrOwnAgent, agentPath("/annotations")},
		{"POST", "/agents/:id/annotations", adminOnly201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/annotations", body: map[string]string{"key": unique("k"), "value": "v"}}
		}},
		{"DELETE", "/agents/:id/annotations/:key", adminOnly204, func(f *matrixFixture, _ who) call {
			k := unique("k")
			f.e.Must(201, "POST", v1+"/agents/"+f.a.ID+"/annotations", f.e.AdminPAK, map[string]string{"key": k, "value": "v"})
			return call{path: v1 + "/agents/" + f.a.ID + "/annotations/" + k}
		}},
		{"GET", "/agents/:id/targets", adminOrOwnAgent, agentPath("/targets")},
		{"POST", "/agents/:id/targets", adminOnly201, func(f *matrixFixture, _ who) call {
			st := f.e.CreateStack(f.e.AdminPAK, unique("t"))
			return call{path: v1 + "/agents/" + f.a.ID + "/targets", body: map[string]string{"stack_id": st}}
		}},
		{"DELETE", "/agents/:id/targets/:stack_id", adminOnly204, func(f *matrixFixture, _ who) call {
			st := f.e.CreateStack(f.e.AdminPAK, unique("t"))
			f.e.Must(201, "POST", v1+"/agents/"+f.a.ID+"/targets", f.e.AdminPAK, map[string]string{"stack_id": st})
			return call{path: v1 + "/agents/" + f.a.ID + "/targets/" + st}
		}},
		{"GET", "/agents/:id/target-state", adminOrOwnAgent, agentPath("/target-state")},
		{"GET", "/agents/:id/stacks", adminOrOwnAgent, agentPath("/stacks")},
		// Only the agent itself may heartbeat; the admin gets 403
		// (docs/compatibility.md#heartbeat-returns-agent).
		{"POST", "/agents/:id/heartbeat", [numWho]int{403, 200, 403, 403, 403}, agentPath("/heartbeat")},
		{"POST", "/agents/:id/rotate-pak", adminOrOwnAgent, func(f *matrixFixture, w who) call {
			x := f.e.CreateAgent(unique("rot"), "c")
			c := call{path: v1 + "/agents/" + x.ID + "/rotate-pak"}
			if w == asOwnAgent {
				c.pak = x.PAK
			}
			return c
		}},
		// Scoped per caller rather than forbidden (see TestRowScopingAgentEvents).
		{"GET", "/agent-events", everyone, path("/agent-events")},
		{"GET", "/agent-events/:id", stackReaders, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agent-events/" + f.event}
		}},

		{"GET", "/generators", adminOnly, path("/generators")},
		{"POST", "/generators", adminOnly201, func(*matrixFixture, who) call {
			return call{path: v1 + "/generators", body: map[string]string{"name": unique("g")}}
		}},
		{"GET", "/generators/:id", adminOrOwnGen, genPath("")},
		{"PUT", "/generators/:id", adminOrOwnGen, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/generators/" + f.g.ID, body: map[string]string{"description": "d"}}
		}},
		{"DELETE", "/generators/:id", adminOrOwnGen204, func(f *matrixFixture, w who) call {
			x := f.e.CreateGenerator(unique("gdel"))
			c := call{path: v1 + "/generators/" + x.ID}
			if w == asOwnGen {
				c.pak = x.PAK
			}
			return c
		}},
		{"POST", "/generators/:id/rotate-pak", adminOrOwnGen201, func(f *matrixFixture, w who) call {
			x := f.e.CreateGenerator(unique("grot"))
			c := call{path: v1 + "/generators/" + x.ID + "/rotate-pak"}
			if w == asOwnGen {
				c.pak = x.PAK
			}
			return c
		}},
		// Registration: the admin names the agent, an agent acts on itself
		// only, a generator never may (reference: 0.9.1 generators.md).
		{"POST", "/generators/:id/register", [numWho]int{201, 201, 403, 403, 403}, func(f *matrixFixture, w who) call {
			x := f.e.CreateGenerator(unique("greg"))
			c := call{path: v1 + "/generators/" + x.ID + "/register", body: map[string]string{"agent_id": f.b.ID}}
			switch w {
			case asOwnAgent:
				c.body = nil
			case asOtherAgent:
				c.body = map[string]string{"agent_id": f.a.ID}
			}
			return c
		}},
		{"DELETE", "/generators/:id/register", [numWho]int{204, 204, 403, 403, 403}, func(f *matrixFixture, w who) call {
			x := f.e.CreateGenerator(unique("gdereg"))
			for _, ag := range []string{f.a.ID, f.b.ID} {
				f.e.Must(201, "POST", v1+"/generators/"+x.ID+"/register", f.e.AdminPAK, map[string]string{"agent_id": ag})
			}
			c := call{path: v1 + "/generators/" + x.ID + "/register", body: map[string]string{"agent_id": f.b.ID}}
			switch w {
			case asOwnAgent:
				c.body = nil
			case asOtherAgent:
				c.body = map[string]string{"agent_id": f.a.ID}
			}
			return c
		}},
		{"GET", "/generators/:id/registered-agents", adminOrOwnGen, genPath("/registered-agents")},
		{"GET", "/agents/:id/registrations", adminOrOwnAgent, agentPath("/registrations")},

		// A generator lists its own stacks (TestRowScopingGeneratorStacks).
		{"GET", "/stacks", [numWho]int{200, 403, 403, 200, 200}, path("/stacks")},
		// Any generator may create a stack; it is always its own.
		{"POST", "/stacks", [numWho]int{201, 403, 403, 201, 201}, func(*matrixFixture, who) call {
			return call{path: v1 + "/stacks", body: map[string]string{"name": unique("s")}}
		}},
		{"GET", "/stacks/:id", adminOrOwnGen, stackPath("")},
		{"PUT", "/stacks/:id", adminOrOwnGen, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack, body: map[string]string{"description": "d"}}
		}},
		{"DELETE", "/stacks/:id", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.e.CreateStack(f.g.PAK, unique("sdel"))}
		}},
		{"GET", "/stacks/:id/labels", stackReaders, stackPath("/labels")},
		{"POST", "/stacks/:id/labels", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack + "/labels", body: `"` + unique("l") + `"`}
		}},
		{"DELETE", "/stacks/:id/labels/:label", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			l := unique("l")
			f.e.Must(201, "POST", v1+"/stacks/"+f.stack+"/labels", f.e.AdminPAK, `"`+l+`"`)
			return call{path: v1 + "/stacks/" + f.stack + "/labels/" + l}
		}},
		{"GET", "/stacks/:id/annotations", stackReaders, stackPath("/annotations")},
		{"POST", "/stacks/:id/annotations", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack + "/annotations", body: map[string]string{"key": unique("k"), "value": "v"}}
		}},
		{"DELETE", "/stacks/:id/annotations/:key", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			k := unique("k")
			f.e.Must(201, "POST", v1+"/stacks/"+f.stack+"/annotations", f.e.AdminPAK, map[string]string{"key": k, "value": "v"})
			return call{path: v1 + "/stacks/" + f.stack + "/annotations/" + k}
		}},
		{"GET", "/stacks/:id/deployment-objects", adminOrOwnGen, stackPath("/deployment-objects")},
		{"POST", "/stacks/:id/deployment-objects", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack + "/deployment-objects", body: map[string]string{"yaml_content": cmYAML(unique("cm"))}}
		}},
		{"GET", "/stacks/:id/rollout-policy", adminOrOwnGen, stackPath("/rollout-policy")},
		{"PUT", "/stacks/:id/rollout-policy", adminOrOwnGen, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack + "/rollout-policy", body: map[string]any{"strategy": "all"}}
		}},
		// The fixture's stack never had a rollout: 404 for those who may see it.
		{"GET", "/stacks/:id/rollout", adminOrOwnGen404, stackPath("/rollout")},
		{"POST", "/stacks/:id/rollout/pause", adminOrOwnGen404, stackPath("/rollout/pause")},
		{"POST", "/stacks/:id/rollout/resume", adminOrOwnGen404, stackPath("/rollout/resume")},
		{"POST", "/stacks/:id/rollout/promote", adminOrOwnGen404, stackPath("/rollout/promote")},
		{"POST", "/stacks/:id/rollout/abort", adminOrOwnGen404, stackPath("/rollout/abort")},
		{"POST", "/stacks/:id/rollback", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			f.e.Deploy(f.g.PAK, f.stack, cmYAML(unique("rb")))
			return call{path: v1 + "/stacks/" + f.stack + "/rollback", body: map[string]any{"deployment_object_id": f.object}}
		}},
		{"GET", "/deployment-objects/:id", stackReaders, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/deployment-objects/" + f.object}
		}},

		{"GET", "/templates", [numWho]int{200, 403, 403, 200, 200}, path("/templates")},
		{"POST", "/templates", [numWho]int{201, 403, 403, 201, 201}, func(*matrixFixture, who) call {
			return call{path: v1 + "/templates", body: templateBody(unique("tpl"))}
		}},
		{"GET", "/templates/:id", adminOrOwnGen, templatePath("")},
		{"PUT", "/templates/:id", adminOrOwnGen, func(f *matrixFixture, _ who) call {
			c := templatePath("")(f, asAdmin)
			c.body = templateBody("ignored")
			return c
		}},
		{"DELETE", "/templates/:id", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/templates/" + f.newTemplate(unique("tdel"))}
		}},
		{"GET", "/templates/:id/versions", adminOrOwnGen, templatePath("/versions")},
		{"GET", "/templates/:id/labels", adminOrOwnGen, templatePath("/labels")},
		{"POST", "/templates/:id/labels", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			c := templatePath("/labels")(f, asAdmin)
			c.body = `"` + unique("l") + `"`
			return c
		}},
		{"DELETE", "/templates/:id/labels/:label", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			id, l := f.newTemplate(unique("tl")), unique("l")
			f.e.Must(201, "POST", v1+"/templates/"+id+"/labels", f.e.AdminPAK, `"`+l+`"`)
			return call{path: v1 + "/templates/" + id + "/labels/" + l}
		}},
		{"GET", "/templates/:id/annotations", adminOrOwnGen, templatePath("/annotations")},
		{"POST", "/templates/:id/annotations", adminOrOwnGen201, func(f *matrixFixture, _ who) call {
			c := templatePath("/annotations")(f, asAdmin)
			c.body = map[string]string{"key": unique("k"), "value": "v"}
			return c
		}},
		{"DELETE", "/templates/:id/annotations/:key", adminOrOwnGen204, func(f *matrixFixture, _ who) call {
			id, k := f.newTemplate(unique("ta")), unique("k")
			f.e.Must(201, "POST", v1+"/templates/"+id+"/annotations", f.e.AdminPAK, map[string]string{"key": k, "value": "v"})
			return call{path: v1 + "/templates/" + id + "/annotations/" + k}
		}},
		{"POST", "/stacks/:id/deployment-objects/from-template", adminOrOwnGen, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/stacks/" + f.stack + "/deployment-objects/from-template",
				body: map[string]any{"template_id": f.newTemplate(unique("inst")), "parameters": map[string]string{"name": unique("cm")}}}
		}},

		{"PATCH", "/agents/:id/health-status", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/health-status", body: map[string]any{
				"deployment_objects": []map[string]any{{"id": f.object, "status": "healthy"}}}}
		}},
		{"GET", "/deployment-objects/:id/health", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/deployment-objects/" + f.object + "/health"}
		}},
		{"GET", "/stacks/:id/health", adminOnly, stackPath("/health")},
		{"POST", "/deployment-objects/:id/diagnostics", [numWho]int{201, 403, 403, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/deployment-objects/" + f.object + "/diagnostics", body: map[string]any{"agent_id": f.a.ID}}
		}},
		{"GET", "/agents/:id/diagnostics/pending", adminOrOwnAgent, agentPath("/diagnostics/pending")},
		{"GET", "/diagnostics/:id", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/diagnostics/" + f.diagnostic("")}
		}},
		{"POST", "/diagnostics/:id/claim", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/diagnostics/" + f.diagnostic("") + "/claim"}
		}},
		// Only the request's agent may submit; the admin gets 403 too.
		{"POST", "/diagnostics/:id/result", [numWho]int{403, 201, 403, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/diagnostics/" + f.diagnostic("claimed") + "/result", body: map[string]any{
				"pod_statuses": "[]", "events": "[]"}}
		}},

		{"GET", "/admin/audit-logs", adminOnly, path("/admin/audit-logs")},
		{"POST", "/admin/config/reload", adminOnly, path("/admin/config/reload")},
	}
	rows = append(rows, workOrderRoleRows()...)
	rows = append(rows, fleetRoleRows()...)
	rows = append(rows, telemetryRoleRows()...)
	return append(rows, webhookRoleRows()...)
}

// registeredRoutes lists every "METHOD /path" that httpapi.Register mounts,
// relative to /api/v1.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	httpapi.Register(r, httpapi.Services{})
	var out []string
	for _, ri := range r.Routes() {
		p, ok := strings.CutPrefix(ri.Path, v1)
		if !ok {
			t.Fatalf("route %s %s is not under %s", ri.Method, ri.Path, v1)
		}
		out = append(out, ri.Method+" "+p)
	}
	sort.Strings(out)
	return out
}

// TestRoleMatrixCoversEveryRoute fails when a route is registered without a
// row in the role matrix (or a row names a route that no longer exists).
func TestRoleMatrixCoversEveryRoute(t *testing.T) {
	t.Parallel()
	rows := map[string]bool{}
	for _, row := range roleRows() {
		key := row.method + " " + row.route
		if rows[key] {
			t.Errorf("duplicate matrix row %s", key)
		}
		rows[key] = true
	}
	registered := registeredRoutes(t)
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
	for _, r := range registered {
		if !rows[r] {
			t.Errorf("route %s has no row in the role matrix (roles_test.go)", r)
		}
		delete(rows, r)
	}
	for r := range rows {
		t.Errorf("matrix row %s matches no registered route", r)
	}
}

// TestRoleMatrix walks every route as: no PAK, a garbage PAK, a bare (no
// "Bearer") garbage PAK, admin, the owning agent, another agent, the owning
// generator and another generator.
// dbSnapshot fingerprints every table's content except audit_logs (where
// refused attempts are recorded by design) and the migration bookkeeping,
// so a refused write can be shown to have changed nothing.
func dbSnapshot(t *testing.T, e *apitest.Env) map[string]string {
	t.Helper()
	var tables []string
	if err := e.Store.DB().Select(&tables, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
		  AND table_name NOT IN ('audit_logs', 'schema_migrations') ORDER BY table_name`); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(tables))
	for _, tb := range tables {
		var sum string
		q := `SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ` + pgQuote(tb) + ` x`
		if err := e.Store.DB().Get(&sum, q); err != nil {
			t.Fatal(err)
		}
		out[tb] = sum
	}
	return out
}

func pgQuote(ident string) string { return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"` }

// unchanged reports the tables whose content differs between two snapshots.
func changedTables(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if before[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	f := newMatrixFixture(t)
	e, outer := f.e, f.e.T
	for _, row := range roleRows() {
		name := row.method + " " + row.route
		mutating := row.method != http.MethodGet
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			e.T = t
			defer func() { e.T = outer }()
			base := row.build(f, asAdmin)

			var before map[string]string
			if mutating {
				before = dbSnapshot(t, e)
			}
			r := e.Do(row.method, base.path, "", base.body)
			wantError(t, r, http.StatusUnauthorized, name+" without PAK")
			r = e.Do(row.method, base.path, garbagePAK, base.body)
			wantError(t, r, http.StatusUnauthorized, name+" with a garbage PAK")
			r = e.Do(row.method, base.path, "", base.body, bare("brokkr_BR123456_"+strings.Repeat("1", 32))...)
			wantError(t, r, http.StatusUnauthorized, name+" with an unknown bare PAK")
			r = e.Do(row.method, base.path, "", base.body, "Authorization", "Bearer")
			wantError(t, r, http.StatusUnauthorized, name+" with an empty Bearer")
			if mutating {
				if ch := changedTables(before, dbSnapshot(t, e)); len(ch) > 0 {
					t.Errorf("%s: unauthenticated attempts changed %v", name, ch)
				}
			}

			for w := who(0); w < numWho; w++ {
				c := base
				if w != asAdmin {
					c = row.build(f, w)
				}
				pak := c.pak
				if pak == "" || w == asInactiveGen {
					pak = f.pak(w)
				}
				want := row.want[w]
				if w == asInactiveGen {
					want = http.StatusUnauthorized
				}
				if mutating {
					before = dbSnapshot(t, e)
				}
				r := e.Do(row.method, c.path, pak, c.body)
				ctx := name + " as " + whoNames[w]
				if r.Status != want {
					t.Errorf("%s: status %d, want %d; body %s", ctx, r.Status, want, r.Body)
					continue
				}
				switch {
				case r.Status == http.StatusNoContent:
					if len(r.Body) != 0 {
						t.Errorf("%s: 204 with body %q", ctx, r.Body)
					}
				case r.Status >= 300:
					errorMessage(t, r, ctx)
					if mutating {
						if ch := changedTables(before, dbSnapshot(t, e)); len(ch) > 0 {
							t.Errorf("%s: refused with %d but changed %v", ctx, r.Status, ch)
						}
					}
				default:
					if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Errorf("%s: Content-Type %q", ctx, ct)
					}
				}
			}
		})
	}
}

// TestEveryRouteRejectsUnknownAndMalformedIDs: for every route with a path
// id, an unknown UUID is a JSON 404 for the admin, and a non-UUID is a JSON
// 400 (docs/compatibility.md#wire-format).
func TestEveryRouteRejectsUnknownAndMalformedIDs(t *testing.T) {
	t.Parallel()
	f := newMatrixFixture(t)
	e, outer := f.e, f.e.T
	unknown := uuid.NewString()
	bodies := map[string]any{
		"PUT /agents/:id":                                   map[string]string{"name": "x"},
		"POST /agents/:id/events":                           map[string]any{"deployment_object_id": f.object, "event_type": "DEPLOY", "status": "SUCCESS"},
		"POST /agents/:id/labels":                           `"x"`,
		"POST /agents/:id/annotations":                      map[string]string{"key": "k", "value": "v"},
		"POST /agents/:id/targets":                          map[string]string{"stack_id": f.stack},
		"POST /agents/:id/telemetry":                        map[string]any{"frames": []any{}},
		"PUT /generators/:id":                               map[string]string{"description": "x"},
		"POST /generators/:id/register":                     map[string]string{"agent_id": f.a.ID},
		"DELETE /generators/:id/register":                   map[string]string{"agent_id": f.a.ID},
		"PUT /stacks/:id":                                   map[string]string{"description": "x"},
		"POST /stacks/:id/labels":                           `"x"`,
		"POST /stacks/:id/annotations":                      map[string]string{"key": "k", "value": "v"},
		"POST /stacks/:id/deployment-objects":               map[string]string{"yaml_content": cmYAML("x")},
		"PUT /stacks/:id/rollout-policy":                    map[string]any{"strategy": "all"},
		"POST /stacks/:id/rollback":                         map[string]any{"to_sequence_id": 1},
		"PUT /templates/:id":                                templateBody("x"),
		"POST /templates/:id/labels":                        `"x"`,
		"POST /templates/:id/annotations":                   map[string]string{"key": "k", "value": "v"},
		"POST /stacks/:id/deployment-objects/from-template": map[string]any{"template_id": uuid.NewString(), "parameters": map[string]string{}},
		"PUT /webhooks/:id":                                 map[string]any{"enabled": false},
		"POST /webhook-deliveries/:id/result":               map[string]any{"success": true},
	}
	for _, route := range registeredRoutes(t) {
		method, p, _ := strings.Cut(route, " ")
		if !strings.Contains(p, ":id") {
			continue
		}
		t.Run(strings.ReplaceAll(route, "/", "_"), func(t *testing.T) {
			e.T = t
			defer func() { e.T = outer }()
			fill := func(id string) string {
				s := strings.ReplaceAll(p, ":id", id)
				s = strings.ReplaceAll(s, ":stack_id", f.stack)
				s = strings.ReplaceAll(s, ":delivery_id", uuid.NewString())
				s = strings.ReplaceAll(s, ":label", "nolabel")
				return strings.ReplaceAll(s, ":key", "nokey")
			}
			pak, want := e.AdminPAK, http.StatusNotFound
			if route == "POST /agents/:id/heartbeat" || route == "POST /agents/:id/telemetry" {
				// Nobody but the agent itself may heartbeat or send
				// telemetry, so an unknown id is forbidden to every caller.
				pak, want = f.a.PAK, http.StatusForbidden
			}
			if route == "POST /webhook-deliveries/:id/result" {
				// Only agents report delivery results (the admin is refused
				// before the lookup); an agent reporting on an unknown
				// delivery gets 404.
				pak = f.a.PAK
			}
			if route == "POST /work-orders/:id/progress" {
				// Only agents report progress (the admin is refused before
				// the lookup); an agent reporting on an unknown order gets 404.
				pak = f.a.PAK
			}
			r := e.Do(method, v1+fill(unknown), pak, bodies[route])
			wantError(t, r, want, route+" with an unknown id")
			r = e.Do(method, v1+fill("not-a-uuid"), pak, bodies[route])
			wantError(t, r, http.StatusBadRequest, route+" with a non-UUID id")
		})
	}
	// :stack_id is parsed too.
	r := e.Do("DELETE", v1+"/agents/"+f.a.ID+"/targets/nope", e.AdminPAK, nil)
	wantError(t, r, http.StatusBadRequest, "DELETE target with a non-UUID stack_id")
	r = e.Do("DELETE", v1+"/agents/"+f.a.ID+"/targets/"+unknown, e.AdminPAK, nil)
	wantError(t, r, http.StatusNotFound, "DELETE unknown target")
}

// TestRoleCheckedBeforeBodyValidation: a caller without the role gets 403
// even when its body is malformed or of the wrong shape
// (docs/compatibility.md#check-order: 401 → 403 → 404 → 400/422).
func TestRoleCheckedBeforeBodyValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("order-a", "c")
	b := e.CreateAgent("order-b", "c")
	g := e.CreateGenerator("order-g")
	h := e.CreateGenerator("order-h")
	st := e.CreateStack(g.PAK, "order")
	cases := []struct{ method, path, pak string }{
		{"POST", v1 + "/agents", a.PAK},
		{"POST", v1 + "/agents", g.PAK},
		{"PUT", v1 + "/agents/" + a.ID, b.PAK},
		{"PUT", v1 + "/agents/" + a.ID, g.PAK},
		{"POST", v1 + "/agents/" + a.ID + "/events", b.PAK},
		{"POST", v1 + "/agents/" + a.ID + "/labels", a.PAK},
		{"POST", v1 + "/agents/" + a.ID + "/annotations", a.PAK},
		{"POST", v1 + "/agents/" + a.ID + "/targets", a.PAK},
		{"POST", v1 + "/generators", g.PAK},
		{"PUT", v1 + "/generators/" + g.ID, h.PAK},
		{"POST", v1 + "/stacks", a.PAK},
		{"PUT", v1 + "/stacks/" + st, a.PAK},
		{"PUT", v1 + "/stacks/" + st, h.PAK},
		{"POST", v1 + "/stacks/" + st + "/labels", a.PAK},
		{"POST", v1 + "/stacks/" + st + "/labels", h.PAK},
		{"POST", v1 + "/stacks/" + st + "/annotations", h.PAK},
		{"POST", v1 + "/stacks/" + st + "/deployment-objects", a.PAK},
		{"POST", v1 + "/stacks/" + st + "/deployment-objects", h.PAK},
	}
	for _, c := range cases {
		for _, body := range []string{`{"name": `, `[1, 2]`, `{"name": 5, "yaml_content": 7, "stack_id": "x"}`} {
			wantError(t, e.Do(c.method, c.path, c.pak, body), 403, c.method+" "+c.path+" with body "+body)
		}
		wantError(t, e.Do(c.method, c.path, c.pak, `{}`, "Content-Type", "text/plain"), 403, c.method+" "+c.path+" as text/plain")
	}
	// 404 before 400/422: a body route under an unknown id is a 404 whatever the body.
	unknown := uuid.NewString()
	for _, p := range []string{
		"PUT /agents/" + unknown, "POST /agents/" + unknown + "/events", "POST /agents/" + unknown + "/labels",
		"POST /agents/" + unknown + "/annotations", "POST /agents/" + unknown + "/targets",
		"PUT /generators/" + unknown,
		"PUT /stacks/" + unknown, "POST /stacks/" + unknown + "/labels", "POST /stacks/" + unknown + "/annotations",
		"POST /stacks/" + unknown + "/deployment-objects",
	} {
		method, path, _ := strings.Cut(p, " ")
		for _, body := range []string{`{"name": `, `[1, 2]`} {
			wantError(t, e.Do(method, v1+path, e.AdminPAK, body), 404, p+" with body "+body)
		}
	}
	// 403 before 404: another agent asking about an unknown agent id learns nothing.
	wantError(t, e.Do("GET", v1+"/agents/"+uuid.NewString(), a.PAK, nil), 403, "agent reading an unknown agent")
	wantError(t, e.Do("GET", v1+"/generators/"+uuid.NewString(), g.PAK, nil), 403, "generator reading an unknown generator")
}
