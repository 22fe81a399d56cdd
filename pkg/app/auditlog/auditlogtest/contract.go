package auditlogtest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
)

// Subject is one implementation under the contract: the reader, and the
// writer that fills the same trail (the journal's Audit).
type Subject struct {
	Store auditlog.Store
	Write func(ctx context.Context, e audit.Entry) error
}

// RunContract checks the audit query's rules: filters, the action prefix
// (its "_" taken literally), newest first, and a total that ignores the page.
func RunContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	admin, agent := uuid.New(), uuid.New()
	stack := uuid.New()
	s := newSubject(t)
	{
		for _, e := range []audit.Entry{
			{ActorType: "admin", ActorID: &admin, Action: "agent.created", ResourceType: "agent", ResourceID: &agent},
			{ActorType: "admin", ActorID: &admin, Action: "stack.created", ResourceType: "stack", ResourceID: &stack},
			{ActorType: "agent", ActorID: &agent, Action: "agent_event.reported", ResourceType: "agent", ResourceID: &agent},
			{ActorType: "admin", ActorID: &admin, Action: "agentxevent", ResourceType: "agent", ResourceID: &agent},
		} {
			if err := s.Write(ctx, e); err != nil {
				t.Fatal(err)
			}
			// Distinct timestamps, so "newest first" has one answer.
			time.Sleep(2 * time.Millisecond)
		}
	}
	future := time.Now().Add(time.Hour)
	cases := []struct {
		name    string
		f       audit.Filter
		actions []string // newest first
		total   int
	}{
		{"all, newest first", audit.Filter{Limit: 10}, []string{"agentxevent", "agent_event.reported", "stack.created", "agent.created"}, 4},
		{"actor type", audit.Filter{ActorType: "agent", Limit: 10}, []string{"agent_event.reported"}, 1},
		{"actor id", audit.Filter{ActorID: &agent, Limit: 10}, []string{"agent_event.reported"}, 1},
		{"exact action", audit.Filter{Action: "stack.created", Limit: 10}, []string{"stack.created"}, 1},
		{"dotted prefix", audit.Filter{Action: "agent.*", Limit: 10}, []string{"agent.created"}, 1},
		{"underscore is literal", audit.Filter{Action: "agent_*", Limit: 10}, []string{"agent_event.reported"}, 1},
		{"resource", audit.Filter{ResourceType: "stack", ResourceID: &stack, Limit: 10}, []string{"stack.created"}, 1},
		{"page keeps the total", audit.Filter{Limit: 2, Offset: 1}, []string{"agent_event.reported", "stack.created"}, 4},
		{"past the end", audit.Filter{Limit: 2, Offset: 9}, nil, 4},
		{"from the future", audit.Filter{From: &future, Limit: 10}, nil, 0},
		{"until the future", audit.Filter{To: &future, ActorType: "agent", Limit: 10}, []string{"agent_event.reported"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := s.Store.QueryAudit(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range got {
				actions = append(actions, e.Action)
			}
			if total != tc.total || len(actions) != len(tc.actions) {
				t.Fatalf("got %v (total %d), want %v (total %d)", actions, total, tc.actions, tc.total)
			}
			for i := range actions {
				if actions[i] != tc.actions[i] {
					t.Fatalf("got %v, want %v", actions, tc.actions)
				}
			}
		})
	}
}
