package stack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// A system stack answers the system generator's id, never null, and reads
// back as a system stack; a generator's stack keeps its generator.
func TestSystemStackGeneratorIDOnTheWire(t *testing.T) {
	sys := stack.Stack{ID: uuid.New(), Name: "s"}
	b, err := json.Marshal(sys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"generator_id":"`+generator.SystemID.String()+`"`) {
		t.Fatalf("system stack JSON %s", b)
	}
	var back stack.Stack
	if err := json.Unmarshal(b, &back); err != nil || back.GeneratorID != nil || back.ID != sys.ID || back.Name != "s" {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	g := uuid.New()
	b, _ = json.Marshal(stack.Stack{Name: "o", GeneratorID: &g})
	if err := json.Unmarshal(b, &back); err != nil || back.GeneratorID == nil || *back.GeneratorID != g {
		t.Fatalf("owned stack round trip %s = %+v, %v", b, back, err)
	}
	// Lists too (the listing is a []Stack).
	b, _ = json.Marshal([]stack.Stack{sys})
	if strings.Contains(string(b), `"generator_id":null`) || !strings.Contains(string(b), generator.SystemID.String()) {
		t.Fatalf("list JSON %s", b)
	}
}
