// Package policy is the one way use cases and route guards say who may call
// them: a Policy admits a principal when any of its rules does, and answers
// everybody else with its own 403 error (each context keeps the original's
// message). The HTTP layer runs the same Policy values before decoding a
// body (403 before 400/422: docs/compatibility.md#check-order); the use cases
// run them again, so they hold for every caller.
package policy

import (
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// A Rule admits a principal, possibly relative to the resource id a call is
// about (the :id of the route; uuid.Nil when there is none).
type Rule func(p identity.Principal, id uuid.UUID) bool

// Rules by role.
var (
	// Admin admits the admin.
	Admin Rule = func(p identity.Principal, _ uuid.UUID) bool { return p.IsAdmin() }
	// System admits the CLI and background jobs.
	System Rule = func(p identity.Principal, _ uuid.UUID) bool { return p.Role == identity.RoleSystem }
	// AnyAgent admits every agent.
	AnyAgent Rule = func(p identity.Principal, _ uuid.UUID) bool { return p.Role == identity.RoleAgent }
	// AnyGenerator admits every generator.
	AnyGenerator Rule = func(p identity.Principal, _ uuid.UUID) bool { return p.Role == identity.RoleGenerator }
	// SelfAgent admits the agent whose id is the resource id.
	SelfAgent Rule = func(p identity.Principal, id uuid.UUID) bool { return p.IsAgent(id) }
	// SelfGenerator admits the generator whose id is the resource id.
	SelfGenerator Rule = func(p identity.Principal, id uuid.UUID) bool { return p.IsGenerator(id) }
)

// Policy is a set of rules and the error that answers a principal none of
// them admits.
type Policy struct {
	denied error
	rules  []Rule
}

// Allow builds a policy: any of rules admits; everybody else gets denied
// (a domain.Forbidden error).
func Allow(denied error, rules ...Rule) Policy {
	return Policy{denied: denied, rules: rules}
}

// Check applies the policy to a call that is not about one resource id.
func (x Policy) Check(p identity.Principal) error { return x.CheckID(p, uuid.Nil) }

// CheckID applies the policy to a call about resource id.
func (x Policy) CheckID(p identity.Principal, id uuid.UUID) error {
	for _, r := range x.rules {
		if r(p, id) {
			return nil
		}
	}
	return x.denied
}
