package console_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
	"github.com/brokkr-go/brokkr/services/api/internal/console"
)

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, headers ...string) page {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", p.body)
	}
	return m[1]
}

// login signs in with pak and returns the session's CSRF token.
func (b *browser) login(pak string) (page, string) {
	b.t.Helper()
	lp := b.do("GET", "/ui/login", nil)
	if lp.status != 200 {
		b.t.Fatalf("login page: %d", lp.status)
	}
	res := b.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(b.t, lp)}, "pak": {pak}})
	if res.status != http.StatusSeeOther {
		return res, ""
	}
	home := b.do("GET", res.header.Get("Location"), nil)
	if home.status != 200 {
		b.t.Fatalf("after login %s: %d %s", res.header.Get("Location"), home.status, home.body)
	}
	return res, csrfOf(b.t, home)
}

func TestLoginSessionCSRFAndHeaders(t *testing.T) {
	env := apitest.New(t)
	b := newBrowser(t, env.URL)

	// Without a session every page leads to the login page.
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("anonymous /ui/: %d %q", p.status, p.header.Get("Location"))
	}
	lp := b.do("GET", "/ui/login", nil)
	csp := lp.header.Get("Content-Security-Policy")
	if csp != console.CSP || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP = %q", csp)
	}
	if strings.Contains(lp.body, "<script>") || strings.Contains(lp.body, " style=") || strings.Contains(lp.body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(lp.body) {
		t.Fatalf("inline script or style in the login page:\n%s", lp.body)
	}

	// The login form's double-submit token is required.
	if p := b.do("POST", "/ui/login", url.Values{"pak": {env.AdminPAK}, "csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", p.status)
	}
	// A wrong PAK is refused without echoing it.
	lp = b.do("GET", "/ui/login", nil)
	wrong := "brokkr_BRnotreal_" + strings.Repeat("x", 24)
	if p := b.do("POST", "/ui/login", url.Values{"pak": {wrong}, "csrf": {csrfOf(t, lp)}}); p.status != http.StatusUnauthorized || strings.Contains(p.body, wrong) {
		t.Fatalf("wrong PAK: %d, echoed=%v", p.status, strings.Contains(p.body, wrong))
	}

	res, csrf := b.login(env.AdminPAK)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/ui/" {
		t.Fatalf("admin login: %d %q %s", res.status, res.header.Get("Location"), res.body)
	}
	var cookie string
	for _, c := range res.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, console.CookieName+"=") {
			cookie = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, env.AdminPAK) || strings.Contains(res.header.Get("Location"), env.AdminPAK) {
		t.Fatal("the PAK leaked into the cookie or the redirect")
	}

	// A state-changing form without the session's token is refused.
	ag := env.CreateAgent("csrf-agent", "c1")
	var wo struct {
		ID string `json:"id"`
	}
	env.Must(201, "POST", "/api/v1/work-orders", env.AdminPAK, map[string]any{"work_type": "custom",
		"yaml_content":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n",
		"target_agent_ids": []string{ag.ID}}).JSON(t, &wo)
	if p := b.do("POST", "/ui/work-orders/"+wo.ID+"/cancel", url.Values{}); p.status != http.StatusForbidden {
		t.Fatalf("cancel without CSRF: %d", p.status)
	}
	if p := b.do("POST", "/ui/work-orders/"+wo.ID+"/cancel", url.Values{"csrf": {"wrong"}}); p.status != http.StatusForbidden {
		t.Fatalf("cancel with a wrong CSRF token: %d", p.status)
	}
	env.Must(200, "GET", "/api/v1/work-orders/"+wo.ID, env.AdminPAK, nil)
	if p := b.do("POST", "/ui/work-orders/"+wo.ID+"/cancel", url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Fatalf("cancel with CSRF: %d %s", p.status, p.body)
	}
	env.Must(404, "GET", "/api/v1/work-orders/"+wo.ID, env.AdminPAK, nil)

	// Logout ends the session server-side.
	if p := b.do("POST", "/ui/logout", url.Values{"csrf": {csrf}}); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther {
		t.Fatalf("after logout /ui/: %d", p.status)
	}
}

func TestAgentsCannotSignIn(t *testing.T) {
	env := apitest.New(t)
	ag := env.CreateAgent("no-console", "c1")
	b := newBrowser(t, env.URL)
	res, _ := b.login(ag.PAK)
	if res.status != http.StatusForbidden || !strings.Contains(res.body, "Agents cannot sign in") {
		t.Fatalf("agent login: %d %s", res.status, res.body)
	}
	for _, c := range res.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, console.CookieName+"=") {
			t.Fatalf("agent got a session cookie: %s", c)
		}
	}
}

func TestGeneratorSeesOnlyItsOwn(t *testing.T) {
	env := apitest.New(t)
	gen := env.CreateGenerator("gen-a")
	mine := env.CreateStack(gen.PAK, "gen-a-stack")
	theirs := env.CreateStack(env.AdminPAK, "admin-only-stack")
	b := newBrowser(t, env.URL)
	res, _ := b.login(gen.PAK)
	if res.header.Get("Location") != "/ui/stacks" {
		t.Fatalf("generator home: %q", res.header.Get("Location"))
	}
	list := b.do("GET", "/ui/stacks", nil)
	if !strings.Contains(list.body, "gen-a-stack") || strings.Contains(list.body, "admin-only-stack") {
		t.Fatalf("generator's stack list:\n%s", list.body)
	}
	if strings.Contains(list.body, `href="/ui/work-orders"`) {
		t.Error("generator nav shows admin views")
	}
	if p := b.do("GET", "/ui/stacks/"+mine, nil); p.status != 200 {
		t.Fatalf("own stack: %d", p.status)
	}
	if p := b.do("GET", "/ui/stacks/"+theirs, nil); p.status != http.StatusForbidden {
		t.Fatalf("other stack: %d", p.status)
	}
	for _, path := range []string{"/ui/work-orders", "/ui/webhooks", "/ui/audit"} {
		if p := b.do("GET", path, nil); p.status != http.StatusForbidden {
			t.Errorf("%s as generator: %d", path, p.status)
		}
	}
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/stacks" {
		t.Errorf("fleet as generator: %d %q", p.status, p.header.Get("Location"))
	}
}

func TestFleetStateDiffAndLive(t *testing.T) {
	env := apitest.New(t)
	b := newBrowser(t, env.URL)
	b.login(env.AdminPAK)

	ag := env.CreateAgent("edge-1", "cluster-a")
	env.Must(200, "POST", "/api/v1/agents/"+ag.ID+"/heartbeat", ag.PAK, nil)
	st := env.CreateStack(env.AdminPAK, "web")
	env.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", env.AdminPAK, map[string]string{"agent_id": ag.ID, "stack_id": st})
	v1, _ := env.Deploy(env.AdminPAK, st, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: blue\n")

	row := regexp.MustCompile(`data-agent="` + ag.ID + `" data-state="([a-z]+)"`)
	state := func() string {
		p := b.do("GET", "/ui/?q=edge", nil)
		m := row.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("agent row missing:\n%s", p.body)
		}
		return m[1]
	}
	if s := state(); s != "pending" {
		t.Fatalf("before the agent applied: %s", s)
	}

	// A live stream sees the agent's event within a couple of seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", env.URL+"/ui/live", nil)
	stream, err := b.c.Do(req)
	if err != nil || stream.StatusCode != 200 || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	got := make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if sc.Text() == "event: change" {
				got <- time.Now()
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	env.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": v1, "event_type": "DEPLOY", "status": "SUCCESS"})
	select {
	case at := <-got:
		if at.Sub(sent) > 3*time.Second {
			t.Errorf("live event after %v", at.Sub(sent))
		}
	case <-ctx.Done():
		t.Fatal("no live event after the agent's report")
	}
	if s := state(); s != "healthy" {
		t.Fatalf("after SUCCESS: %s", s)
	}
	// A FAILURE on a newer object makes it failing, with the reason shown.
	v2, _ := env.Deploy(env.AdminPAK, st, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: green\n  size: large\n")
	if s := state(); s != "pending" {
		t.Fatalf("after a new object: %s", s)
	}
	env.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": v2, "event_type": "DEPLOY", "status": "FAILURE", "message": "quota exceeded"})
	if s := state(); s != "failing" {
		t.Fatalf("after FAILURE: %s", s)
	}
	agentPage := b.do("GET", "/ui/agents/"+ag.ID, nil)
	if !strings.Contains(agentPage.body, "quota exceeded") || !strings.Contains(agentPage.body, "target") {
		t.Fatalf("agent page lacks the reason or why:\n%s", agentPage.body)
	}

	diff := b.do("GET", "/ui/stacks/"+st+"/diff?from="+v1+"&to="+v2, nil)
	if diff.status != 200 {
		t.Fatalf("diff: %d %s", diff.status, diff.body)
	}
	for _, want := range []string{"color: blue", "color: green", "size: large", `class="del"`, `class="add"`} {
		if !strings.Contains(diff.body, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if !strings.Contains(diff.body, "+2") || !strings.Contains(diff.body, "−1") {
		t.Errorf("diff summary wrong:\n%s", diff.body)
	}
	// The partial render is the live region only.
	part := b.do("GET", "/ui/?q=edge", nil, console.PartialHeader, "1")
	if strings.Contains(part.body, "<html") || !strings.Contains(part.body, `id="fleet"`) {
		t.Fatalf("partial render:\n%s", part.body)
	}
	// Bad input is a 400 page, not a 500.
	for _, path := range []string{"/ui/?sort=bogus", "/ui/?limit=-1", "/ui/agents/not-a-uuid", "/ui/stacks/" + st + "/diff?from=x&to=y",
		"/ui/audit?from=yesterday"} {
		if p := b.do("GET", path, nil); p.status != http.StatusBadRequest {
			t.Errorf("%s: %d", path, p.status)
		}
	}
}
