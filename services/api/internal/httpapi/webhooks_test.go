package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// Secrets used by these tests; none of them may appear in a response to
// the admin, in an audit entry or in an error message.
const (
	hookToken  = "tok-3e1f9a7c"
	hookAuth   = "Bearer hook-auth-5d2b8e"
	hookSecret = "sign-key-8c4a1f"
)

// captured is one request a test receiver got.
type captured struct {
	header http.Header
	body   []byte
}

// receiverOf starts a loopback receiver answering status and recording
// every request.
func receiverOf(t *testing.T, status int, body string) (string, <-chan captured) {
	t.Helper()
	ch := make(chan captured, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- captured{r.Header.Clone(), b}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks/" + hookToken + "?token=" + hookToken, ch
}

func createHook(t *testing.T, e *apitest.Env, body map[string]any) map[string]any {
	t.Helper()
	r := e.Must(201, "POST", v1+"/webhooks", e.AdminPAK, body)
	noSecrets(t, r.Body, "create response")
	return r.Map(t)
}

// noSecrets fails when any test secret appears in b.
func noSecrets(t *testing.T, b []byte, context string) {
	t.Helper()
	for _, s := range []string{hookToken, hookAuth, hookSecret} {
		if bytes.Contains(b, []byte(s)) {
			t.Fatalf("%s reveals a secret (%q): %s", context, s, b)
		}
	}
}

func TestWebhookSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	url := "https://hooks.example.com/services/" + hookToken
	agentID := uuid.NewString()
	created := createHook(t, e, map[string]any{
		"name": "Deployment Notifications", "url": url, "auth_header": hookAuth, "signing_secret": hookSecret,
		"event_types": []string{"deployment.applied", "deployment.failed"}, "target_labels": []string{},
		"filters": map[string]any{"agent_id": agentID, "labels": map[string]string{"env": "production"}},
	})
	wantKeys(t, created, "subscription", "id", "name", "has_url", "has_auth_header", "has_signing_secret", "event_types",
		"filters", "target_labels", "enabled", "max_retries", "timeout_seconds", "created_at", "updated_at", "created_by")
	id := wantUUID(t, created["id"], "id")
	if created["has_url"] != true || created["has_auth_header"] != true || created["has_signing_secret"] != true {
		t.Errorf("has_* flags: %v", created)
	}
	if created["enabled"] != true || created["max_retries"] != 5.0 || created["timeout_seconds"] != 30.0 || created["created_by"] != "admin" {
		t.Errorf("defaults: %v", created)
	}
	if created["target_labels"] != nil {
		t.Errorf("an empty target_labels list must mean broker delivery (null), got %v", created["target_labels"])
	}
	f, _ := created["filters"].(map[string]any)
	if f["agent_id"] != agentID || f["labels"].(map[string]any)["env"] != "production" {
		t.Errorf("filters: %v", created["filters"])
	}
	wantTimestamp(t, created["created_at"], "created_at")

	// Encrypted at rest, in the original's format, under the api's key.
	var blobs struct {
		URL  []byte `db:"url_encrypted"`
		Auth []byte `db:"auth_header_encrypted"`
		Key  []byte `db:"signing_secret_encrypted"`
	}
	if err := e.Store.DB().Get(&blobs, `SELECT url_encrypted, auth_header_encrypted, signing_secret_encrypted
		FROM webhook_subscriptions WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	for plain, blob := range map[string][]byte{url: blobs.URL, hookAuth: blobs.Auth, hookSecret: blobs.Key} {
		if blob[0] != 0x01 || bytes.Contains(blob, []byte(plain)) {
			t.Fatalf("secret stored in the clear or in the wrong format: %x", blob[:8])
		}
		got, err := e.WebhookCipher.OpenString(blob)
		if err != nil || got != plain {
			t.Fatalf("stored secret does not decrypt to what was sent: %v", err)
		}
	}

	// Reads never show the secrets.
	for _, p := range []string{"/webhooks", "/webhooks/" + id} {
		noSecrets(t, e.Must(200, "GET", v1+p, e.AdminPAK, nil).Body, "GET "+p)
	}
	wantErrorMsg(t, e.Do("GET", v1+"/webhooks/"+uuid.NewString(), e.AdminPAK, nil), 404, "Webhook subscription not found", "unknown id")

	// PUT is partial: omitted fields stay, null clears the nullable ones.
	upd := e.Must(200, "PUT", v1+"/webhooks/"+id, e.AdminPAK, map[string]any{"enabled": false, "max_retries": 10}).Map(t)
	if upd["enabled"] != false || upd["max_retries"] != 10.0 || upd["has_auth_header"] != true || upd["name"] != "Deployment Notifications" {
		t.Errorf("partial update: %v", upd)
	}
	upd = e.Must(200, "PUT", v1+"/webhooks/"+id, e.AdminPAK, map[string]any{
		"auth_header": nil, "signing_secret": nil, "filters": nil, "target_labels": []string{"env:prod"}}).Map(t)
	if upd["has_auth_header"] != false || upd["has_signing_secret"] != false || upd["filters"] != nil || upd["has_url"] != true {
		t.Errorf("null must clear: %v", upd)
	}
	if tl, _ := upd["target_labels"].([]any); len(tl) != 1 || tl[0] != "env:prod" {
		t.Errorf("target_labels: %v", upd["target_labels"])
	}
	upd = e.Must(200, "PUT", v1+"/webhooks/"+id, e.AdminPAK, map[string]any{"target_labels": nil, "auth_header": "Token x"}).Map(t)
	if upd["target_labels"] != nil || upd["has_auth_header"] != true {
		t.Errorf("target_labels null / new auth header: %v", upd)
	}
	// A full object as the original's clients echo it back is accepted.
	echo := e.Must(200, "GET", v1+"/webhooks/"+id, e.AdminPAK, nil).Map(t)
	e.Must(200, "PUT", v1+"/webhooks/"+id, e.AdminPAK, echo)
	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"name": nil}, "name cannot be null"},
		{map[string]any{"url": "ftp://x"}, "URL must start with http:// or https://"},
		{map[string]any{"event_types": []string{}}, "At least one event type is required"},
		{map[string]any{"timeout_seconds": 0}, "timeout_seconds must be between 1 and 300"},
		{map[string]any{"auth_header": "a\r\nX-Evil: 1"}, "auth_header must not contain line breaks"},
	} {
		wantErrorMsg(t, e.Do("PUT", v1+"/webhooks/"+id, e.AdminPAK, c.body), 400, c.msg, "PUT invalid")
	}
	wantError(t, e.Do("PUT", v1+"/webhooks/"+id, e.AdminPAK, map[string]any{"filters": map[string]any{"agent_id": "nope"}}), 422, "bad filter id")

	// Create validation.
	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"name": "x", "url": " ", "event_types": []string{"*"}}, "URL is required"},
		{map[string]any{"name": "x", "url": "gopher://" + hookToken, "event_types": []string{"*"}}, "URL must start with http:// or https://"},
		{map[string]any{"name": " ", "url": url, "event_types": []string{"*"}}, "Name cannot be empty"},
		{map[string]any{"name": strings.Repeat("n", 256), "url": url, "event_types": []string{"*"}}, "Name cannot exceed 255 characters"},
		{map[string]any{"name": "x", "url": url}, "At least one event type is required"},
		{map[string]any{"name": "x", "url": url, "event_types": []string{"*"}, "max_retries": -1}, "max_retries must be between 0 and 100"},
	} {
		r := e.Do("POST", v1+"/webhooks", e.AdminPAK, c.body)
		wantErrorMsg(t, r, 400, c.msg, "create invalid")
		noSecrets(t, r.Body, "validation error")
	}

	// Delete is hard; a second delete is 404.
	e.Must(204, "DELETE", v1+"/webhooks/"+id, e.AdminPAK, nil)
	wantError(t, e.Do("GET", v1+"/webhooks/"+id, e.AdminPAK, nil), 404, "deleted")
	wantError(t, e.Do("DELETE", v1+"/webhooks/"+id, e.AdminPAK, nil), 404, "deleted twice")

	// Every change is audited, with the admin as actor and no secrets.
	r := e.Must(200, "GET", v1+"/admin/audit-logs?action=webhook.*&limit=100", e.AdminPAK, nil)
	noSecrets(t, r.Body, "audit log")
	var page struct {
		Logs []struct {
			Action     string         `json:"action"`
			ActorType  string         `json:"actor_type"`
			ResourceID string         `json:"resource_id"`
			Details    map[string]any `json:"details"`
		} `json:"logs"`
	}
	r.JSON(t, &page)
	counts := map[string]int{}
	for _, l := range page.Logs {
		if l.ResourceID != id || l.ActorType != "admin" {
			t.Errorf("audit entry %+v", l)
		}
		counts[l.Action]++
	}
	if counts["webhook.created"] != 1 || counts["webhook.updated"] != 4 || counts["webhook.deleted"] != 1 {
		t.Errorf("audit actions %v", counts)
	}
}

func TestWebhookEventTypes(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	var got []string
	e.Must(200, "GET", v1+"/webhooks/event-types", e.AdminPAK, nil).JSON(t, &got)
	want := []string{"agent.registered", "agent.deregistered", "stack.created", "stack.deleted", "deployment.created",
		"deployment.applied", "deployment.failed", "deployment.deleted", "workorder.created", "workorder.claimed",
		"workorder.completed", "workorder.failed", "deployment.drifted", "workorder.retry_scheduled",
		"workorder.cancelled", "schedule.created", "schedule.updated", "schedule.deleted",
		"rollout.wave_started", "rollout.halted", "rollout.completed", "stack.rolled_back"}
	if !slices.Equal(got, want) {
		t.Fatalf("event types %v", got)
	}
}

func TestWebhookTestDelivery(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	url, got := receiverOf(t, 200, "ok")
	id := createHook(t, e, map[string]any{"name": "t", "url": url, "auth_header": hookAuth, "signing_secret": hookSecret,
		"event_types": []string{"*"}, "timeout_seconds": 5})["id"].(string)
	r := e.Must(200, "POST", v1+"/webhooks/"+id+"/test", e.AdminPAK, nil)
	m := r.Map(t)
	if m["success"] != true || m["status_code"] != 200.0 || m["message"] != "Test delivery successful" {
		t.Fatalf("test result %v", m)
	}
	c := <-got
	var env struct {
		ID        string         `json:"id"`
		EventType string         `json:"event_type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(c.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.EventType != webhook.TestEventType || env.Data["subscription_id"] != id ||
		env.Data["message"] != "This is a test webhook delivery from Brokkr" {
		t.Errorf("test body %s", c.body)
	}
	wantUUID(t, env.ID, "event id")
	wantTimestamp(t, env.Timestamp, "timestamp")
	for k, want := range map[string]string{"Content-Type": "application/json", webhook.HeaderEventType: "webhook.test",
		webhook.HeaderDeliveryID: env.ID, "Authorization": hookAuth} {
		if v := c.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if !webhook.Verify([]byte(hookSecret), c.body, c.header.Get(webhook.HeaderSignature)) {
		t.Errorf("bad signature %q", c.header.Get(webhook.HeaderSignature))
	}
	// No delivery row is created by a test.
	var n int
	_ = e.Store.DB().Get(&n, `SELECT count(*) FROM webhook_deliveries`)
	if n != 0 {
		t.Errorf("%d delivery rows after a test", n)
	}

	// A non-2xx answer: 400 with the documented fields.
	bad, _ := receiverOf(t, 500, "boom")
	id2 := createHook(t, e, map[string]any{"name": "t2", "url": bad, "event_types": []string{"*"}})["id"].(string)
	r = e.Do("POST", v1+"/webhooks/"+id2+"/test", e.AdminPAK, nil)
	wantErrorMsg(t, r, 400, "Endpoint returned HTTP 500 Internal Server Error", "non-2xx test")
	m = r.Map(t)
	if m["success"] != false || m["status_code"] != 500.0 || m["body"] != "boom" {
		t.Errorf("non-2xx test body %v", m)
	}
	// A transport failure: 400 without status_code, and no URL in the text.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + l.Addr().String() + "/" + hookToken
	_ = l.Close()
	id3 := createHook(t, e, map[string]any{"name": "t3", "url": closed, "event_types": []string{"*"}})["id"].(string)
	r = e.Do("POST", v1+"/webhooks/"+id3+"/test", e.AdminPAK, nil)
	wantErrorMsg(t, r, 400, "Request failed: connection refused", "refused test")
	noSecrets(t, r.Body, "refused test")
	if _, ok := r.Map(t)["status_code"]; ok {
		t.Errorf("transport failure with a status code: %s", r.Body)
	}
	// validate: true rejects a subscription whose receiver fails, and stores nothing.
	r = e.Do("POST", v1+"/webhooks", e.AdminPAK, map[string]any{"name": "v", "url": bad, "event_types": []string{"*"}, "validate": true})
	wantErrorMsg(t, r, 400, "Validation delivery failed: HTTP 500 Internal Server Error: boom", "validate")
	var subs []any
	e.Must(200, "GET", v1+"/webhooks", e.AdminPAK, nil).JSON(t, &subs)
	if len(subs) != 3 {
		t.Errorf("%d subscriptions, want 3", len(subs))
	}
	createHook(t, e, map[string]any{"name": "v2", "url": url, "event_types": []string{"*"}, "validate": true})
}

func TestWebhookTestHonoursSSRFGuard(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, apitest.WithWebhookSSRFGuard())
	url, got := receiverOf(t, 200, "ok")
	for _, u := range []string{url, strings.Replace(url, "127.0.0.1", "localhost", 1)} {
		// Refused at creation (issue 10 item 7) ...
		wantError(t, e.Do("POST", v1+"/webhooks", e.AdminPAK, map[string]any{"name": unique("g"), "url": u,
			"event_types": []string{"*"}}), 422, "loopback URL at creation")
		// ... and, for a URL stored before that check (or a name that
		// resolves to loopback), at connect time.
		id := createHook(t, e, map[string]any{"name": unique("g"), "url": "http://receiver.example/",
			"event_types": []string{"*"}})["id"].(string)
		if _, err := e.Store.DB().Exec(`UPDATE webhook_subscriptions SET url_encrypted = $1 WHERE id = $2`,
			e.WebhookCipher.SealString(u), id); err != nil {
			t.Fatal(err)
		}
		r := e.Do("POST", v1+"/webhooks/"+id+"/test", e.AdminPAK, nil)
		wantErrorMsg(t, r, 400, "Request failed: destination address not allowed (loopback)", "guarded test")
	}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/", "http://[::ffff:127.0.0.1]:80/", "http://0.0.0.0/"} {
		wantError(t, e.Do("POST", v1+"/webhooks", e.AdminPAK, map[string]any{"name": unique("m"), "url": u,
			"event_types": []string{"*"}}), 422, u)
	}
	// Agent-delivered subscriptions reach in-cluster addresses from the
	// agent, which has no such guard: not refused.
	createHook(t, e, map[string]any{"name": unique("a"), "url": "http://127.0.0.1:8080/", "event_types": []string{"*"},
		"target_labels": []string{"env:prod"}})
	select {
	case <-got:
		t.Fatal("the guarded test reached the loopback receiver")
	default:
	}
}

// insertDelivery adds a delivery for sub directly (the relay lives in
// webhook-dispatch) and returns its id.
func insertDelivery(t *testing.T, e *apitest.Env, sub string) string {
	t.Helper()
	id := uuid.New()
	if _, err := postgres.NewDeliveries(e.Store).InsertDeliveries(context.Background(), []webhook.Delivery{{ID: id, SubscriptionID: uuid.MustParse(sub),
		EventID: uuid.New(), EventType: "deployment.failed", Payload: `{"id":"x","event_type":"deployment.failed"}`}}); err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestWebhookDeliveryListing(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	sub := createHook(t, e, map[string]any{"name": "l", "url": "https://x.example.com/" + hookToken, "event_types": []string{"*"}})["id"].(string)
	var all []string
	for range 5 {
		all = append(all, insertDelivery(t, e, sub))
	}
	db := e.Store.DB()
	// Distinct creation times, oldest first in insertion order; two are dead.
	for i, id := range all {
		db.MustExec(`UPDATE webhook_deliveries SET created_at = now() - make_interval(mins => $2) WHERE id = $1`, id, 10-i)
	}
	db.MustExec(`UPDATE webhook_deliveries SET status = 'dead', completed_at = now(), last_error = 'HTTP 400', attempts = 1
		WHERE id = ANY($1::uuid[])`, []string{all[1], all[3]})

	list := ids(t, e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries", e.AdminPAK, nil))
	if !slices.Equal(list, []string{all[4], all[3], all[2], all[1], all[0]}) {
		t.Errorf("not newest first: %v", list)
	}
	if got := ids(t, e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries?limit=2&offset=1", e.AdminPAK, nil)); !slices.Equal(got, []string{all[3], all[2]}) {
		t.Errorf("limit/offset: %v", got)
	}
	if got := ids(t, e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries?status=dead", e.AdminPAK, nil)); !slices.Equal(got, []string{all[3], all[1]}) {
		t.Errorf("status filter: %v", got)
	}
	if got := ids(t, e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries?status=bogus", e.AdminPAK, nil)); len(got) != 0 {
		t.Errorf("unknown status: %v", got)
	}
	var one []map[string]any
	e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries?limit=1", e.AdminPAK, nil).JSON(t, &one)
	wantKeys(t, one[0], "delivery", "id", "subscription_id", "event_type", "event_id", "payload", "target_labels", "status",
		"acquired_by", "acquired_until", "attempts", "last_attempt_at", "next_retry_at", "last_error", "last_status_code",
		"created_at", "completed_at")
	if _, ok := one[0]["payload"].(string); !ok {
		t.Errorf("payload must be a JSON string: %v", one[0]["payload"])
	}
	wantError(t, e.Do("GET", v1+"/webhooks/"+sub+"/deliveries?limit=-1", e.AdminPAK, nil), 400, "negative limit")
	wantError(t, e.Do("GET", v1+"/webhooks/"+sub+"/deliveries?offset=x", e.AdminPAK, nil), 400, "bad offset")
	wantError(t, e.Do("GET", v1+"/webhooks/"+uuid.NewString()+"/deliveries", e.AdminPAK, nil), 404, "unknown subscription")
	// Deleting the subscription deletes its deliveries.
	e.Must(204, "DELETE", v1+"/webhooks/"+sub, e.AdminPAK, nil)
	var n int
	_ = db.Get(&n, `SELECT count(*) FROM webhook_deliveries`)
	if n != 0 {
		t.Errorf("%d deliveries survived their subscription", n)
	}
}

type pendingItem struct {
	ID             string  `json:"id"`
	SubscriptionID string  `json:"subscription_id"`
	EventType      string  `json:"event_type"`
	Payload        string  `json:"payload"`
	URL            *string `json:"url"`
	AuthHeader     *string `json:"auth_header"`
	SigningSecret  *string `json:"signing_secret"`
	TimeoutSeconds int     `json:"timeout_seconds"`
	MaxRetries     int     `json:"max_retries"`
	Attempts       int     `json:"attempts"`
}

func pending(t *testing.T, e *apitest.Env, agentID, pak string) []pendingItem {
	t.Helper()
	var out []pendingItem
	r := e.Must(200, "GET", v1+"/agents/"+agentID+"/webhooks/pending", pak, nil)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	r.JSON(t, &out)
	return out
}

func deliveryOf(t *testing.T, e *apitest.Env, sub, id string) map[string]any {
	t.Helper()
	var list []map[string]any
	e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries?limit=1000", e.AdminPAK, nil).JSON(t, &list)
	for _, d := range list {
		if d["id"] == id {
			return d
		}
	}
	t.Fatalf("delivery %s not listed", id)
	return nil
}

func TestAgentClaimsAndReportsDeliveries(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	url := "http://alertmanager.monitoring.svc.cluster.local:9093/api/v2/alerts?token=" + hookToken
	sub := createHook(t, e, map[string]any{"name": "in-cluster", "url": url, "auth_header": hookAuth,
		"signing_secret": hookSecret, "event_types": []string{"deployment.failed"},
		"target_labels": []string{"env:prod", "region:us"}, "max_retries": 2, "timeout_seconds": 7})["id"].(string)
	a := e.CreateAgent("wh-a", "c")
	b := e.CreateAgent("wh-b", "c")
	c := e.CreateAgent("wh-c", "c")
	for _, l := range []string{"env:prod", "region:us", "extra"} {
		e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"`+l+`"`)
	}
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/labels", e.AdminPAK, `"env:prod"`)
	var want []string
	for range 12 {
		want = append(want, insertDelivery(t, e, sub))
	}

	// An agent missing a target label, or without labels, claims nothing.
	if got := pending(t, e, b.ID, b.PAK); len(got) != 0 {
		t.Fatalf("agent B lacks region:us but claimed %d", len(got))
	}
	if got := pending(t, e, c.ID, c.PAK); len(got) != 0 {
		t.Fatalf("an unlabelled agent claimed %d", len(got))
	}
	// The admin previews without claiming and without secrets.
	preview := pending(t, e, a.ID, e.AdminPAK)
	if len(preview) != 10 || preview[0].URL != nil || preview[0].AuthHeader != nil || preview[0].SigningSecret != nil {
		t.Fatalf("admin preview: %+v", preview)
	}
	if d := deliveryOf(t, e, sub, preview[0].ID); d["status"] != "pending" {
		t.Fatalf("the admin preview claimed: %v", d)
	}

	// Agent A claims 10, then the remaining 2, then nothing.
	first := pending(t, e, a.ID, a.PAK)
	if len(first) != 10 {
		t.Fatalf("first claim took %d", len(first))
	}
	p := first[0]
	if p.URL == nil || *p.URL != url || p.AuthHeader == nil || *p.AuthHeader != hookAuth || p.SigningSecret == nil ||
		*p.SigningSecret != hookSecret || p.TimeoutSeconds != 7 || p.MaxRetries != 2 || p.EventType != "deployment.failed" ||
		p.SubscriptionID != sub || !strings.Contains(p.Payload, "deployment.failed") {
		t.Fatalf("claimed delivery %+v", p)
	}
	second := pending(t, e, a.ID, a.PAK)
	if len(second) != 2 || len(pending(t, e, a.ID, a.PAK)) != 0 {
		t.Fatalf("second claim took %d", len(second))
	}
	var claimed []string
	for _, x := range append(first, second...) {
		claimed = append(claimed, x.ID)
	}
	slices.Sort(claimed)
	slices.Sort(want)
	if !slices.Equal(claimed, want) {
		t.Fatalf("claimed %v, want %v", claimed, want)
	}
	d := deliveryOf(t, e, sub, p.ID)
	if d["status"] != "acquired" || d["acquired_by"] != a.ID || d["acquired_until"] == nil {
		t.Fatalf("claimed row %v", d)
	}
	until := wantTimestamp(t, d["acquired_until"], "acquired_until")
	if lease := time.Until(until); lease < 50*time.Second || lease > 61*time.Second {
		t.Errorf("lease %v, want about 60 s", lease)
	}

	result := func(id, pak string, body any) apitest.Response {
		return e.Do("POST", v1+"/webhook-deliveries/"+id+"/result", pak, body)
	}
	// Only the holder reports.
	wantErrorMsg(t, result(p.ID, b.PAK, map[string]any{"success": true}), 403, "Delivery not acquired by this agent", "other agent")
	wantErrorMsg(t, result(p.ID, e.AdminPAK, map[string]any{"success": true}), 403, "Agent authentication required", "admin")
	wantError(t, result(uuid.NewString(), a.PAK, map[string]any{"success": true}), 404, "unknown delivery")
	wantError(t, result(p.ID, a.PAK, map[string]any{"status_code": 200}), 422, "missing success")

	// Success.
	ok := e.Must(200, "POST", v1+"/webhook-deliveries/"+p.ID+"/result", a.PAK, map[string]any{"success": true, "status_code": 200, "duration_ms": 12}).Map(t)
	wantKeys(t, ok, "success result", "status", "delivery_id")
	if ok["status"] != "success" || ok["delivery_id"] != p.ID {
		t.Fatalf("success result %v", ok)
	}
	d = deliveryOf(t, e, sub, p.ID)
	if d["status"] != "success" || d["attempts"] != 1.0 || d["completed_at"] == nil || d["last_error"] != nil || d["acquired_by"] != a.ID {
		t.Fatalf("delivered row %v", d)
	}
	wantError(t, result(p.ID, a.PAK, map[string]any{"success": true}), 409, "reported twice")

	// A retryable failure: failed, a retry ~2 s later, the agent's echo of the
	// URL and auth header blanked out of last_error.
	f := first[1]
	r := e.Must(200, "POST", v1+"/webhook-deliveries/"+f.ID+"/result", a.PAK, map[string]any{"success": false,
		"status_code": 503, "error": "HTTP 503 from " + url + " with " + hookAuth}).Map(t)
	if r["status"] != "failed" || r["attempts"] != 1.0 || r["next_retry_at"] == nil {
		t.Fatalf("retryable failure %v", r)
	}
	next := wantTimestamp(t, r["next_retry_at"], "next_retry_at")
	if wait := time.Until(next); wait < time.Second || wait > 3*time.Second {
		t.Errorf("first retry in %v, want 2–2.5 s", wait)
	}
	d = deliveryOf(t, e, sub, f.ID)
	if d["status"] != "failed" || d["acquired_by"] != nil || d["last_status_code"] != 503.0 ||
		!strings.Contains(d["last_error"].(string), "[REDACTED]") {
		t.Fatalf("failed row %v", d)
	}
	noSecrets(t, e.Must(200, "GET", v1+"/webhooks/"+sub+"/deliveries", e.AdminPAK, nil).Body, "deliveries")
	// Once due, the failed delivery is claimable again; after max_retries
	// retries a retryable failure is dead.
	e.Store.DB().MustExec(`UPDATE webhook_deliveries SET next_retry_at = now() - interval '1 second' WHERE id = $1`, f.ID)
	again := pending(t, e, a.ID, a.PAK)
	if len(again) != 1 || again[0].ID != f.ID || again[0].Attempts != 1 {
		t.Fatalf("re-claim of a due retry: %+v", again)
	}
	r = e.Must(200, "POST", v1+"/webhook-deliveries/"+f.ID+"/result", a.PAK, map[string]any{"success": false}).Map(t)
	if r["status"] != "failed" || r["attempts"] != 2.0 {
		t.Fatalf("second failure %v", r)
	}
	e.Store.DB().MustExec(`UPDATE webhook_deliveries SET next_retry_at = now() - interval '1 second' WHERE id = $1`, f.ID)
	pending(t, e, a.ID, a.PAK)
	r = e.Must(200, "POST", v1+"/webhook-deliveries/"+f.ID+"/result", a.PAK, map[string]any{"success": false, "error": "timeout"}).Map(t)
	if r["status"] != "dead" || r["attempts"] != 3.0 || r["next_retry_at"] != nil {
		t.Fatalf("exhausted retries %v", r)
	}
	if _, present := r["next_retry_at"]; !present {
		t.Errorf("next_retry_at must be present (null) on a dead result: %v", r)
	}
	// A non-retryable status (404) is dead at once, and audited.
	g := first[2]
	r = e.Must(200, "POST", v1+"/webhook-deliveries/"+g.ID+"/result", a.PAK, map[string]any{"success": false, "status_code": 404}).Map(t)
	if r["status"] != "dead" || r["attempts"] != 1.0 {
		t.Fatalf("404 must be dead at once: %v", r)
	}
	var page struct {
		Logs []map[string]any `json:"logs"`
	}
	e.Must(200, "GET", v1+"/admin/audit-logs?action=webhook.delivery_failed", e.AdminPAK, nil).JSON(t, &page)
	if len(page.Logs) != 2 || page.Logs[0]["actor_type"] != "agent" || page.Logs[0]["actor_id"] != a.ID {
		t.Fatalf("delivery_failed audit %v", page.Logs)
	}

	// An expired lease frees the delivery for another labelled agent.
	a2 := e.CreateAgent("wh-a2", "c")
	for _, l := range []string{"env:prod", "region:us"} {
		e.Must(201, "POST", v1+"/agents/"+a2.ID+"/labels", e.AdminPAK, `"`+l+`"`)
	}
	e.Store.DB().MustExec(`UPDATE webhook_deliveries SET acquired_until = now() - interval '1 second' WHERE id = $1`, first[3].ID)
	taken := pending(t, e, a2.ID, a2.PAK)
	if len(taken) != 1 || taken[0].ID != first[3].ID {
		t.Fatalf("expired lease not re-claimed: %+v", taken)
	}
	wantErrorMsg(t, result(first[3].ID, a.PAK, map[string]any{"success": true}), 403, "Delivery not acquired by this agent", "lost lease")

	// An INACTIVE agent gets nothing; an unknown agent is 404.
	insertDelivery(t, e, sub)
	e.Must(200, "PUT", v1+"/agents/"+a2.ID, e.AdminPAK, map[string]any{"status": "INACTIVE"})
	if got := pending(t, e, a2.ID, a2.PAK); len(got) != 0 {
		t.Fatalf("an INACTIVE agent claimed %d", len(got))
	}
	wantErrorMsg(t, e.Do("GET", v1+"/agents/"+uuid.NewString()+"/webhooks/pending", e.AdminPAK, nil), 404, "Agent not found", "unknown agent")
}

func TestConcurrentAgentClaimsAreDisjoint(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	sub := createHook(t, e, map[string]any{"name": "race", "url": "http://svc.local/x", "event_types": []string{"*"},
		"target_labels": []string{"role:monitoring"}})["id"].(string)
	for range 60 {
		insertDelivery(t, e, sub)
	}
	agents := make([]apitest.Agent, 4)
	for i := range agents {
		agents[i] = e.CreateAgent(unique("racer"), "c")
		e.Must(201, "POST", v1+"/agents/"+agents[i].ID+"/labels", e.AdminPAK, `"role:monitoring"`)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, ag := range agents {
		wg.Go(func() {
			for {
				req, _ := http.NewRequest("GET", e.URL+v1+"/agents/"+ag.ID+"/webhooks/pending", nil)
				req.Header.Set("Authorization", "Bearer "+ag.PAK)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var got []pendingItem
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("claim: %d %v", resp.StatusCode, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, g := range got {
					if prev, dup := seen[g.ID]; dup {
						t.Errorf("delivery %s claimed by %s and %s", g.ID, prev, ag.ID)
					}
					seen[g.ID] = ag.ID
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 60 {
		t.Fatalf("%d of 60 deliveries claimed", len(seen))
	}
}

func TestWebhookRoleBeforeBody(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("wrb-a", "c")
	g := e.CreateGenerator("wrb-g")
	sub := createHook(t, e, map[string]any{"name": "rb", "url": "https://x.example.com", "event_types": []string{"*"}})["id"].(string)
	for _, c := range []struct{ method, path, pak string }{
		{"POST", v1 + "/webhooks", a.PAK},
		{"POST", v1 + "/webhooks", g.PAK},
		{"PUT", v1 + "/webhooks/" + sub, a.PAK},
		{"POST", v1 + "/webhook-deliveries/" + uuid.NewString() + "/result", g.PAK},
		{"POST", v1 + "/webhook-deliveries/" + uuid.NewString() + "/result", e.AdminPAK},
	} {
		for _, body := range []string{`{"name": `, `[1, 2]`, `{"success": "yes"}`} {
			wantError(t, e.Do(c.method, c.path, c.pak, body), 403, c.method+" "+c.path+" "+body)
		}
	}
	for _, c := range []struct{ method, path, pak string }{
		{"PUT", v1 + "/webhooks/" + uuid.NewString(), e.AdminPAK},
		{"POST", v1 + "/webhook-deliveries/" + uuid.NewString() + "/result", a.PAK},
	} {
		for _, body := range []string{`{"name": `, `[1, 2]`} {
			wantError(t, e.Do(c.method, c.path, c.pak, body), 404, c.method+" "+c.path+" "+body)
		}
	}
}

func TestWebhookRetryDeadDelivery(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	sub := createHook(t, e, map[string]any{"name": "r", "url": "https://x.example.com/" + hookToken, "event_types": []string{"*"}})["id"].(string)
	other := createHook(t, e, map[string]any{"name": "o", "url": "https://y.example.com/" + hookToken, "event_types": []string{"*"}})["id"].(string)
	dead, live := insertDelivery(t, e, sub), insertDelivery(t, e, sub)
	e.Store.DB().MustExec(`UPDATE webhook_deliveries SET status = 'dead', attempts = 4, completed_at = now(),
		last_attempt_at = now(), last_error = 'HTTP 500', last_status_code = 500, enqueued_at = now() WHERE id = $1`, dead)

	var got map[string]any
	e.Must(200, "POST", v1+"/webhooks/"+sub+"/deliveries/"+dead+"/retry", e.AdminPAK, nil).JSON(t, &got)
	if got["status"] != "pending" || got["attempts"] != float64(0) || got["completed_at"] != nil || got["last_error"] != "HTTP 500" {
		t.Fatalf("after retry: %v", got)
	}
	var enqueued *time.Time
	if err := e.Store.DB().Get(&enqueued, `SELECT enqueued_at FROM webhook_deliveries WHERE id = $1`, dead); err != nil || enqueued != nil {
		t.Fatalf("enqueued_at after retry: %v %v (the sweep must see it as never queued)", enqueued, err)
	}
	wantError(t, e.Do("POST", v1+"/webhooks/"+sub+"/deliveries/"+dead+"/retry", e.AdminPAK, nil), 409, "retry of a pending delivery")
	wantError(t, e.Do("POST", v1+"/webhooks/"+sub+"/deliveries/"+live+"/retry", e.AdminPAK, nil), 409, "retry of a live delivery")
	wantError(t, e.Do("POST", v1+"/webhooks/"+other+"/deliveries/"+dead+"/retry", e.AdminPAK, nil), 404, "delivery of another subscription")
	wantError(t, e.Do("POST", v1+"/webhooks/"+sub+"/deliveries/"+uuid.NewString()+"/retry", e.AdminPAK, nil), 404, "unknown delivery")
	wantError(t, e.Do("POST", v1+"/webhooks/"+sub+"/deliveries/nope/retry", e.AdminPAK, nil), 400, "bad delivery id")

	var page struct {
		Logs []map[string]any `json:"logs"`
	}
	e.Must(200, "GET", v1+"/admin/audit-logs?action=webhook.delivery_retried", e.AdminPAK, nil).JSON(t, &page)
	if len(page.Logs) != 1 || page.Logs[0]["resource_id"] != sub {
		t.Fatalf("audit: %v", page.Logs)
	}
}

// An agent's report of a delivery attempt wakes the console's live views
// (a coalesced note), as webhook-dispatch's own outcomes do.
func TestAgentDeliveryReportWakesLiveViews(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	sub := createHook(t, e, map[string]any{"name": "in-cluster-live", "url": "http://receiver.monitoring.svc:9093/hook",
		"event_types": []string{"deployment.failed"}, "target_labels": []string{"env:live"}})["id"].(string)
	a := e.CreateAgent("wh-live", "c")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"env:live"`)
	insertDelivery(t, e, sub)
	claimed := pending(t, e, a.ID, a.PAK)
	if len(claimed) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(claimed))
	}
	woken, cancel := e.Changes.Watch()
	defer cancel()
	// Watch signals once on subscription; drain until quiet.
	for quiet := false; !quiet; {
		select {
		case <-woken:
		case <-time.After(1500 * time.Millisecond):
			quiet = true
		}
	}
	e.Must(200, "POST", v1+"/webhook-deliveries/"+claimed[0].ID+"/result", a.PAK, map[string]any{"success": true, "status_code": 200})
	select {
	case <-woken:
	case <-time.After(3 * time.Second):
		t.Fatal("the agent's delivery report did not wake the live views")
	}
}
