package generator

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// ParseIDs reads generator ids given as UUIDs, each entry possibly a
// comma-separated list (0.9.1's --generator-ids), keeping the first of
// repeats in order.
func ParseIDs(raw []string) ([]uuid.UUID, error) {
	var out []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, entry := range raw {
		for _, r := range strings.Split(entry, ",") {
			if strings.TrimSpace(r) == "" {
				continue
			}
			id, err := uuid.Parse(strings.TrimSpace(r))
			if err != nil {
				return nil, fmt.Errorf("%q is not a UUID", r)
			}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// RegisteredWith renders the generators a new agent is registered with as
// 0.9.1's CLI prints them after "Registered with: ": the system generator
// as "system (fleet scope)", then the other ids.
func RegisteredWith(ids []uuid.UUID) string {
	parts := []string{"system (fleet scope)"}
	for _, id := range ids {
		if id != SystemID && id != uuid.Nil {
			parts = append(parts, id.String())
		}
	}
	return strings.Join(parts, ", ")
}
