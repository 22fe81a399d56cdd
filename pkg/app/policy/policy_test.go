package policy_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

func TestPolicy(t *testing.T) {
	self, other := uuid.New(), uuid.New()
	denied := domain.Forbidden("nope")
	system := identity.Principal{Role: identity.RoleSystem}
	cases := []struct {
		name   string
		policy policy.Policy
		p      identity.Principal
		id     uuid.UUID
		ok     bool
	}{
		{"admin admits admin", policy.Allow(denied, policy.Admin), identity.Admin, uuid.Nil, true},
		{"admin refuses agent", policy.Allow(denied, policy.Admin), identity.Agent(self), uuid.Nil, false},
		{"admin refuses system", policy.Allow(denied, policy.Admin), system, uuid.Nil, false},
		{"system admits system", policy.Allow(denied, policy.System), system, uuid.Nil, true},
		{"any agent admits an agent", policy.Allow(denied, policy.AnyAgent), identity.Agent(other), uuid.Nil, true},
		{"any agent refuses a generator", policy.Allow(denied, policy.AnyAgent), identity.Generator(self), uuid.Nil, false},
		{"any generator admits a generator", policy.Allow(denied, policy.AnyGenerator), identity.Generator(other), uuid.Nil, true},
		{"self agent admits itself", policy.Allow(denied, policy.SelfAgent), identity.Agent(self), self, true},
		{"self agent refuses another agent", policy.Allow(denied, policy.SelfAgent), identity.Agent(other), self, false},
		{"self agent refuses the generator with the id", policy.Allow(denied, policy.SelfAgent), identity.Generator(self), self, false},
		{"self generator admits itself", policy.Allow(denied, policy.SelfGenerator), identity.Generator(self), self, true},
		{"self generator refuses the agent with the id", policy.Allow(denied, policy.SelfGenerator), identity.Agent(self), self, false},
		{"any rule admits", policy.Allow(denied, policy.Admin, policy.SelfAgent), identity.Agent(self), self, true},
		{"no rule refuses", policy.Allow(denied), identity.Admin, uuid.Nil, false},
		{"self without an id refuses", policy.Allow(denied, policy.SelfAgent), identity.Agent(self), uuid.Nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.CheckID(tc.p, tc.id)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, denied) {
				t.Fatalf("got %v, want the policy's own error", err)
			}
		})
	}
	if err := policy.Allow(denied, policy.Admin).Check(identity.Admin); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
