package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// The agent page requests diagnostics (admin, CSRF) and shows each
// request's status and, once the agent submitted it, its result: counts,
// the collected documents and the agent's error.
func TestAgentPageDiagnostics(t *testing.T) {
	env := apitest.New(t)
	ag := env.CreateAgent("diag-agent", "c1")
	st := env.CreateStack(env.AdminPAK, "diag-stack")
	env.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", env.AdminPAK, map[string]string{"agent_id": ag.ID, "stack_id": st})
	obj, _ := env.Deploy(env.AdminPAK, st, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n")

	b := newBrowser(t, env.URL)
	b.login(env.AdminPAK)
	page := b.do("GET", "/ui/agents/"+ag.ID, nil)
	if !strings.Contains(page.body, `<option value="`+obj+`">diag-stack #`) || !strings.Contains(page.body, "No diagnostics requested") {
		t.Fatalf("agent page before any request:\n%s", page.body)
	}
	csrf := csrfOf(t, page)
	form := url.Values{"object_id": {obj}, "retention_minutes": {"30"}}
	if p := b.do("POST", "/ui/agents/"+ag.ID+"/diagnostics", form); p.status != http.StatusForbidden {
		t.Fatalf("request without CSRF: %d", p.status)
	}
	for _, bad := range []url.Values{{"object_id": {"nope"}}, {"object_id": {obj}, "retention_minutes": {"0"}},
		{"object_id": {obj}, "retention_minutes": {"x"}}} {
		bad.Set("csrf", csrf)
		if p := b.do("POST", "/ui/agents/"+ag.ID+"/diagnostics", bad); p.status != http.StatusBadRequest {
			t.Errorf("request %v: %d, want 400", bad, p.status)
		}
	}
	form.Set("csrf", csrf)
	if p := b.do("POST", "/ui/agents/"+ag.ID+"/diagnostics", form); p.status != http.StatusSeeOther ||
		p.header.Get("Location") != "/ui/agents/"+ag.ID+"#diagnostics" {
		t.Fatalf("request: %d %q %s", p.status, p.header.Get("Location"), p.body)
	}
	var pending []struct {
		ID          string    `json:"id"`
		RequestedBy string    `json:"requested_by"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	env.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/diagnostics/pending", ag.PAK, nil).JSON(t, &pending)
	if len(pending) != 1 || pending[0].RequestedBy != "console" || time.Until(pending[0].ExpiresAt) > 31*time.Minute {
		t.Fatalf("pending requests after the console's: %+v", pending)
	}
	first := pending[0].ID
	row := func(id string) string {
		p := b.do("GET", "/ui/agents/"+ag.ID, nil, "X-Console-Partial", "1")
		m := regexp.MustCompile(`(?s)<tr data-diagnostic="` + id + `".*?</tr>`).FindString(p.body)
		if m == "" {
			t.Fatalf("no row for diagnostics request %s:\n%s", id, p.body)
		}
		return m
	}
	if r := row(first); !strings.Contains(r, `data-status="pending"`) || !strings.Contains(r, "Not collected yet") {
		t.Fatalf("pending row: %s", r)
	}

	// The agent claims and submits: open pages are told at once, and the
	// row shows the result.
	events := liveEvents(t, b)
	env.Must(200, "POST", "/api/v1/diagnostics/"+first+"/claim", ag.PAK, nil)
	drain(events)
	submitted := time.Now()
	env.Must(201, "POST", "/api/v1/diagnostics/"+first+"/result", ag.PAK, map[string]any{
		"pod_statuses": []map[string]any{{"name": "web-1", "phase": "Running"}, {"name": "web-2", "phase": "CrashLoopBackOff"}},
		"events":       []map[string]any{{"reason": "BackOff", "message": "restarting <failed> container"}},
		"log_tails":    map[string]string{"web-2": "panic: boom"},
		"collected_at": time.Now().UTC().Format(time.RFC3339)})
	select {
	case at := <-events:
		if d := at.Sub(submitted); d > 3*time.Second {
			t.Errorf("diagnostics result pushed after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("diagnostics result was not pushed to the open page")
	}
	r := row(first)
	for _, want := range []string{`data-status="completed"`, "2 pods, 1 events, log tails", "CrashLoopBackOff",
		"restarting &lt;failed&gt; container", "panic: boom"} {
		if !strings.Contains(r, want) {
			t.Errorf("completed row lacks %q:\n%s", want, r)
		}
	}

	// A failed collection shows the agent's error.
	b.do("POST", "/ui/agents/"+ag.ID+"/diagnostics", form)
	env.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/diagnostics/pending", ag.PAK, nil).JSON(t, &pending)
	if len(pending) != 1 {
		t.Fatalf("pending after the second request: %+v", pending)
	}
	env.Must(200, "POST", "/api/v1/diagnostics/"+pending[0].ID+"/claim", ag.PAK, nil)
	env.Must(201, "POST", "/api/v1/diagnostics/"+pending[0].ID+"/result", ag.PAK, map[string]any{
		"pod_statuses": []any{}, "events": []any{}, "error": "namespace not found",
		"collected_at": time.Now().UTC().Format(time.RFC3339)})
	if r := row(pending[0].ID); !strings.Contains(r, `data-status="failed"`) || !strings.Contains(r, "Error: namespace not found") {
		t.Errorf("failed row: %s", r)
	}

	// A generator cannot request diagnostics (as the API).
	gen := env.CreateGenerator("diag-gen")
	gb := newBrowser(t, env.URL)
	_, gcsrf := gb.login(gen.PAK)
	if p := gb.do("POST", "/ui/agents/"+ag.ID+"/diagnostics", url.Values{"object_id": {obj}, "csrf": {gcsrf}}); p.status != http.StatusForbidden {
		t.Errorf("generator's request: %d", p.status)
	}
}
