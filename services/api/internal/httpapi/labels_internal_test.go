package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/labels"
)

// The label views keep the original's field order and name the owner by
// the route's field; a label equal to a field name stays a value.
func TestLabelViewsJSON(t *testing.T) {
	id, owner := uuid.MustParse("11111111-1111-1111-1111-111111111111"), uuid.MustParse("22222222-2222-2222-2222-222222222222")
	b, err := json.Marshal([]labelView{{"agent_id", labels.Label{ID: id, OwnerID: owner, Label: "label"}}})
	want := `[{"id":"11111111-1111-1111-1111-111111111111","agent_id":"22222222-2222-2222-2222-222222222222","label":"label"}]`
	if err != nil || string(b) != want {
		t.Fatalf("got %s, %v\nwant %s", b, err, want)
	}
	b, err = json.Marshal(annotationView{"stack_id", labels.Annotation{ID: id, OwnerID: owner, Key: "k", Value: `"v"`}})
	want = `{"id":"11111111-1111-1111-1111-111111111111","stack_id":"22222222-2222-2222-2222-222222222222","key":"k","value":"\"v\""}`
	if err != nil || string(b) != want {
		t.Fatalf("got %s, %v\nwant %s", b, err, want)
	}
}

func TestAnnotationBodyOwner(t *testing.T) {
	cases := []struct {
		body  string
		owner *uuid.UUID
		bad   bool
	}{
		{body: `{"key":"k","value":"v"}`},
		{body: `{"key":"k","value":"v","stack_id":null}`},
		{body: `{"key":"k","value":"v","agent_id":"22222222-2222-2222-2222-222222222222"}`,
			owner: new(uuid.MustParse("22222222-2222-2222-2222-222222222222"))},
		{body: `{"key":"k","value":"v","agent_id":"nope"}`, bad: true},
		{body: `{"key":1}`, bad: true},
	}
	for _, tc := range cases {
		b := annotationBody{owner: ownerRef{field: "agent_id"}}
		err := json.Unmarshal([]byte(tc.body), &b)
		if tc.bad != (err != nil) {
			t.Fatalf("%s: err %v", tc.body, err)
		}
		if tc.bad {
			continue
		}
		if b.Key != "k" || b.Value != "v" || (tc.owner == nil) != (b.owner.id == nil) || (tc.owner != nil && *tc.owner != *b.owner.id) {
			t.Fatalf("%s: decoded %+v owner %v", tc.body, b, b.owner.id)
		}
	}
}
