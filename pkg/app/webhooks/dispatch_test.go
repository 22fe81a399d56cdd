package webhooks

import (
	"testing"
)

func TestCanonicalPayload(t *testing.T) {
	// What jsonb gives back for an envelope.
	in := `{"id": "e1", "data": {"name": "s", "stack_id": "x", "sequence_id": 9007199254740993, "nested": {"b": 1, "a": [1, 2]}}, "timestamp": "2025-01-02T10:00:00.123456Z", "event_type": "stack.created"}`
	want := `{"id":"e1","event_type":"stack.created","timestamp":"2025-01-02T10:00:00.123456Z","data":{"name":"s","nested":{"a":[1,2],"b":1},"sequence_id":9007199254740993,"stack_id":"x"}}`
	if got := Canonical(in); got != want {
		t.Fatalf("Canonical:\n got %s\nwant %s", got, want)
	}
	if got := Canonical(want); got != want {
		t.Fatalf("not idempotent: %s", got)
	}
	for _, odd := range []string{`not json`, `{"data": {}}`, `[]`} {
		if got := Canonical(odd); got != odd {
			t.Errorf("Canonical(%q) = %q, want it unchanged", odd, got)
		}
	}
	if got := Canonical(`{"id": "e", "event_type": "t", "data": {"message": "a <b> & c"}}`); got != `{"id":"e","event_type":"t","data":{"message":"a <b> & c"}}` {
		t.Errorf("HTML escaping: %s", got)
	}
	if got := Canonical(`{"id":"e","event_type":"t","timestamp":"x"}`); got != `{"id":"e","event_type":"t","timestamp":"x","data":{}}` {
		t.Errorf("missing data: %s", got)
	}
}

func TestHostLimiter(t *testing.T) {
	h := NewHostLimiter(2)
	first, second, third := h.TryAcquire("a:1"), h.TryAcquire("a:1"), h.TryAcquire("a:1")
	if !first || !second || third {
		t.Fatalf("limit 2 not enforced: %v %v %v", first, second, third)
	}
	if !h.TryAcquire("b:1") {
		t.Fatal("another host is limited separately")
	}
	h.Release("a:1")
	if !h.TryAcquire("a:1") {
		t.Fatal("a released slot is free again")
	}
	h.Release("a:1")
	h.Release("a:1")
	if h.InUse("a:1") != 0 {
		t.Fatalf("in use %d", h.InUse("a:1"))
	}
	unlimited := NewHostLimiter(0)
	for range 100 {
		if !unlimited.TryAcquire("x") {
			t.Fatal("0 means no limit")
		}
	}
}
