package generator_test

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

func TestParseIDsAndRegisteredWith(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	got, err := generator.ParseIDs([]string{a.String() + ", " + b.String(), "", a.String()})
	if err != nil || !slices.Equal(got, []uuid.UUID{a, b}) {
		t.Fatalf("ParseIDs = %v, %v", got, err)
	}
	if _, err := generator.ParseIDs([]string{a.String() + ",nope"}); err == nil || err.Error() != `"nope" is not a UUID` {
		t.Fatalf("malformed: %v", err)
	}
	if s := generator.RegisteredWith(nil); s != "system (fleet scope)" {
		t.Fatalf("no extra: %q", s)
	}
	if s := generator.RegisteredWith([]uuid.UUID{generator.SystemID, a, b}); s != "system (fleet scope), "+a.String()+", "+b.String() {
		t.Fatalf("extra: %q", s)
	}
}
