package httpapi_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// garbagePAK is well-formed enough to reach the lookup but matches nothing.
const garbagePAK = "brokkr_BRxxxxxx_notarealtoken"

// pakPattern is docs/compatibility.md#pak-format with the default lengths:
// "BR" + 6 base58
// characters, then the base58 of 24 random bytes (usually 32–33 characters).
var pakPattern = regexp.MustCompile(`^brokkr_BR[1-9A-HJ-NP-Za-km-z]{6}_[1-9A-HJ-NP-Za-km-z]{30,34}$`)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

var uniq atomic.Int64

// unique returns a name that no other call in this process returns.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, uniq.Add(1))
}

// cmYAML is a small valid manifest whose content differs per name.
func cmYAML(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: default\ndata:\n  k: v\n"
}

// wantError asserts r has status want and a JSON error body in both shapes
// ({"error"} and 0.9.1's {"code", "message"}), and returns the message
// (docs/compatibility.md#json-errors).
func wantError(t testing.TB, r apitest.Response, want int, context string) string {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", context, r.Status, want, r.Body)
	}
	return errorMessage(t, r, context)
}

// errorMessage asserts the body is a JSON object with a non-empty "error",
// the same "message" and a snake_case "code" (docs/error-codes.md).
func errorMessage(t testing.TB, r apitest.Response, context string) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: status %d has Content-Type %q, want JSON; body %q", context, r.Status, ct, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: status %d body is not a JSON object: %q", context, r.Status, r.Body)
	}
	msg, ok := m["error"].(string)
	if !ok || strings.TrimSpace(msg) == "" {
		t.Fatalf("%s: status %d body has no non-empty \"error\" string: %s", context, r.Status, r.Body)
	}
	if m["message"] != msg {
		t.Fatalf("%s: status %d body's \"message\" differs from \"error\": %s", context, r.Status, r.Body)
	}
	if code, _ := m["code"].(string); !errorCode.MatchString(code) {
		t.Fatalf("%s: status %d body has no snake_case \"code\": %s", context, r.Status, r.Body)
	}
	return msg
}

var errorCode = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// wantErrorCode asserts status and the stable code of an error body.
func wantErrorCode(t testing.TB, r apitest.Response, want int, code, context string) {
	t.Helper()
	wantError(t, r, want, context)
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	if m["code"] != code {
		t.Fatalf("%s: code %v, want %q; body %s", context, m["code"], code, r.Body)
	}
}

// wantErrorMsg asserts status and the exact error message.
func wantErrorMsg(t testing.TB, r apitest.Response, want int, msg, context string) {
	t.Helper()
	if got := wantError(t, r, want, context); got != msg {
		t.Fatalf("%s: error %q, want %q", context, got, msg)
	}
}

// keysOf returns the sorted-insensitive key set of a JSON object.
func keysOf(m map[string]any) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// wantKeys asserts that the object has exactly the given keys.
func wantKeys(t testing.TB, m map[string]any, context string, keys ...string) {
	t.Helper()
	got := keysOf(m)
	for _, k := range keys {
		if !got[k] {
			t.Errorf("%s: missing field %q in %v", context, k, m)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("%s: unexpected field %q in %v", context, k, m)
	}
}

// wantTimestamp asserts v is an RFC 3339 UTC timestamp ending in Z.
func wantTimestamp(t testing.TB, v any, context string) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok || !strings.HasSuffix(s, "Z") {
		t.Fatalf("%s: timestamp %v is not an RFC 3339 UTC string with Z", context, v)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %v", context, err)
	}
	return ts
}

// wantUUID asserts v is a lowercase hyphenated UUID string.
func wantUUID(t testing.TB, v any, context string) string {
	t.Helper()
	s, _ := v.(string)
	if !uuidPattern.MatchString(s) {
		t.Fatalf("%s: %v is not a lowercase UUID", context, v)
	}
	return s
}

// ids returns the "id" field of each object in a JSON array body.
func ids(t testing.TB, r apitest.Response) []string {
	t.Helper()
	var list []map[string]any
	r.JSON(t, &list)
	out := make([]string, len(list))
	for i, m := range list {
		out[i], _ = m["id"].(string)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// targetState returns the agent's target state as seen by the agent.
func targetState(e *apitest.Env, ag apitest.Agent, query string) []object {
	e.T.Helper()
	var objs []object
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state"+query, ag.PAK, nil).JSON(e.T, &objs)
	return objs
}

// ack reports an event for an object as the agent.
func ack(e *apitest.Env, ag apitest.Agent, objectID, status string) {
	e.T.Helper()
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objectID, "event_type": "DEPLOY", "status": status})
}

// bare sends the PAK without the "Bearer " scheme.
func bare(pak string) []string { return []string{"Authorization", pak} }
