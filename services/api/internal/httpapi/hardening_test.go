package httpapi_test

import (
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

func countRows(t *testing.T, e *apitest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.Store.DB().Get(&n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue item 1: an agent may report events and health only on objects of
// stacks it is (or was) associated with.
func TestAgentReportsOnlyOnAssociatedObjects(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent(unique("a"), "c")
	b := e.CreateAgent(unique("b"), "c")
	g1, g2 := e.CreateGenerator(unique("g1")), e.CreateGenerator(unique("g2"))
	s1, s2 := e.CreateStack(g1.PAK, unique("s1")), e.CreateStack(g2.PAK, unique("s2"))
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": s1})
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": s2})
	o1, _ := e.Deploy(g1.PAK, s1, cmYAML("one"))
	o2, _ := e.Deploy(g2.PAK, s2, cmYAML("two"))

	event := func(obj string) map[string]any {
		return map[string]any{"deployment_object_id": obj, "event_type": "DEPLOY", "status": "SUCCESS"}
	}
	health := func(obj string) map[string]any {
		return map[string]any{"deployment_objects": []map[string]any{{"id": obj, "status": "failing",
			"summary": map[string]any{"pods_ready": 0, "pods_total": 1, "conditions": []string{}}}}}
	}
	wantError(t, e.Do("POST", v1+"/agents/"+a.ID+"/events", a.PAK, event(o2)), 422, "A's event on B's object")
	wantError(t, e.Do("PATCH", v1+"/agents/"+a.ID+"/health-status", a.PAK, health(o2)), 422, "A's health on B's object")
	if n := countRows(t, e, `SELECT count(*) FROM agent_events WHERE agent_id = $1`, a.ID); n != 0 {
		t.Fatalf("refused event stored: %d rows", n)
	}
	if n := countRows(t, e, `SELECT count(*) FROM deployment_health WHERE deployment_object_id = $1`, o2); n != 0 {
		t.Fatalf("refused health stored: %d rows", n)
	}
	var g2Events []map[string]any
	e.Must(200, "GET", v1+"/agent-events", g2.PAK, nil).JSON(t, &g2Events)
	if len(g2Events) != 0 {
		t.Fatalf("generator 2 sees forged events: %v", g2Events)
	}

	// Its own object: accepted, and still after the target is removed
	// (it was associated and reported before).
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/events", a.PAK, event(o1))
	e.Must(200, "PATCH", v1+"/agents/"+a.ID+"/health-status", a.PAK, health(o1))
	e.Must(204, "DELETE", v1+"/agents/"+a.ID+"/targets/"+s1, e.AdminPAK, nil)
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/events", a.PAK, event(o1))
	// The admin may report on any object.
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/events", e.AdminPAK, event(o2))
}

// Issue item 6: a deactivated generator cannot act; a PAK with another
// prefix or short token does not authenticate.
func TestDeactivatedGeneratorAndForgedShortToken(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator(unique("g"))
	e.CreateStack(g.PAK, unique("before"))
	var gen map[string]any
	e.Must(200, "GET", v1+"/generators/"+g.ID, e.AdminPAK, nil).JSON(t, &gen)
	gen["is_active"] = false
	e.Must(200, "PUT", v1+"/generators/"+g.ID, e.AdminPAK, gen)
	before := countRows(t, e, `SELECT count(*) FROM stacks WHERE generator_id = $1`, g.ID)
	wantError(t, e.Do("POST", v1+"/stacks", g.PAK, map[string]any{"name": unique("after")}), 401, "deactivated generator")
	gen["is_active"] = true
	wantError(t, e.Do("PUT", v1+"/generators/"+g.ID, g.PAK, gen), 401, "deactivated generator reactivating itself")
	if after := countRows(t, e, `SELECT count(*) FROM stacks WHERE generator_id = $1`, g.ID); after != before {
		t.Fatalf("deactivated generator created a stack")
	}
	e.Must(200, "PUT", v1+"/generators/"+g.ID, e.AdminPAK, gen)
	e.CreateStack(g.PAK, unique("reactivated"))

	parts := strings.SplitN(e.AdminPAK, "_", 3)
	for _, forged := range []string{"brokkr_X_" + parts[2], "x_y_" + parts[2], parts[0] + "_" + parts[1] + "x_" + parts[2]} {
		wantError(t, e.Do("GET", v1+"/agents", forged, nil), 401, "forged public part")
	}
	e.Must(200, "GET", v1+"/agents", e.AdminPAK, nil)
}

// Issue item 8: NUL and invalid UTF-8 are 400 at the edge; %00 in a path is
// 400; an integer no column can hold is 422; never a 500.
func TestUnstorableInputIsAClientError(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ag := e.CreateAgent(unique("a"), "c")
	st := e.CreateStack(e.AdminPAK, unique("s"))
	for _, c := range []struct{ method, path, body string }{
		{"POST", v1 + "/agents", `{"name":"a\u0000b","cluster_name":"c"}`},
		{"POST", v1 + "/stacks", `{"name":"n","description":"\u0000"}`},
		{"POST", v1 + "/stacks/" + st + "/labels", `"x\u0000"`},
		{"POST", v1 + "/stacks/" + st + "/deployment-objects", `{"yaml_content":"a: \u0000"}`},
		{"POST", v1 + "/agents/" + ag.ID + "/annotations", "{\"key\":\"k\",\"value\":\"\xff\xfe\"}"},
		{"POST", v1 + "/templates", `{"name":"t","template_content":"x","parameters_schema":"{\"\u0000\":1}"}`},
	} {
		wantError(t, e.Do(c.method, c.path, e.AdminPAK, c.body), 400, c.method+" "+c.path+" "+c.body)
	}
	for _, p := range []string{"/agents/" + ag.ID + "/labels/%00", "/stacks/" + st + "/annotations/a%00b", "/agents/%ff%fe"} {
		wantError(t, e.Do("DELETE", v1+p, e.AdminPAK, nil), 400, "DELETE "+p)
	}
	tpl := e.Must(201, "POST", v1+"/templates", e.AdminPAK, map[string]any{"name": unique("t"),
		"template_content": cmYAML("x"), "parameters_schema": `{"type":"object"}`}).Map(t)
	wantError(t, e.Do("POST", v1+"/stacks/"+st+"/deployment-objects/from-template", e.AdminPAK,
		`{"template_id":"`+tpl["id"].(string)+`","version":9223372036854775807,"parameters":{}}`), 422, "version overflow")
	wantError(t, e.Do("POST", v1+"/stacks/"+st+"/deployment-objects/from-template", e.AdminPAK,
		`{"template_id":"`+tpl["id"].(string)+`","version":99999999999999999999999,"parameters":{}}`), 422, "version beyond int64")
}

// Issue item 9: PostgreSQL unreachable is 503 with Retry-After, not 500.
func TestDatabaseDownIs503(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	e.Must(200, "GET", v1+"/agents", e.AdminPAK, nil) // the admin PAK is now cached
	// Make the test database refuse every connection and drop the
	// pooled ones: what the api sees while PostgreSQL is down.
	var name string
	if err := e.Store.DB().Get(&name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	e.Store.DB().SetMaxIdleConns(0)
	admin, err := sqlx.Open("pgx", pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	quoted := pgQuote(name)
	if _, err := admin.Exec(`ALTER DATABASE ` + quoted + ` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(`ALTER DATABASE ` + quoted + ` ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	r := e.Do("GET", v1+"/agents", e.AdminPAK, nil)
	wantError(t, r, 503, "database closed")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

// Issue item 2: X-Forwarded-For from an untrusted peer (here loopback,
// which used to be trusted) neither changes the audited client IP nor
// spreads failures over addresses.
func TestForwardedForIgnoredFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	for i := 0; i < 5; i++ {
		r := e.Do("GET", v1+"/agents", "brokkr_BRnope_"+strings.Repeat("1", 30+i), nil,
			"X-Forwarded-For", "198.51.100."+string(rune('1'+i)), "X-Real-IP", "203.0.113.7")
		wantError(t, r, 401, "bad PAK")
	}
	var ips []string
	if err := e.Store.DB().Select(&ips, `SELECT DISTINCT ip_address FROM audit_logs WHERE action = 'auth.failed'`); err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Fatalf("audited client IPs %v, want only the TCP peer 127.0.0.1", ips)
	}
}
