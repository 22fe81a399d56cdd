package webhook

import (
	"strings"

	"github.com/google/uuid"
)

// MatchPattern applies one event_types entry to an event type
// (docs/webhooks.md#patterns):
// "*" matches everything, "<prefix>.*" matches types starting with
// "<prefix>." (the dot is required), anything else must match exactly.
func MatchPattern(pattern, eventType string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok && prefix != "" {
		return strings.HasPrefix(eventType, prefix+".")
	}
	return pattern == eventType
}

// MatchesAny reports whether any pattern matches the event type.
func MatchesAny(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if MatchPattern(p, eventType) {
			return true
		}
	}
	return false
}

// Subject is what an event is about, as far as filters care: the agent and
// the stack involved and their labels and annotations.
type Subject struct {
	AgentID *uuid.UUID
	StackID *uuid.UUID
	// Labels of the agent and of the stack.
	Labels []string
	// Annotations of the agent and of the stack (a key may carry a value
	// on each).
	Annotations map[string][]string
}

// SubjectIDs extracts the ids an event's data names: agent_id, stack_id
// and deployment_object_id (whose stack the caller resolves when stack_id
// is absent, e.g. for deployment.applied).
func SubjectIDs(data map[string]any) (agentID, stackID, deploymentObjectID *uuid.UUID) {
	get := func(key string) *uuid.UUID {
		s, ok := data[key].(string)
		if !ok {
			return nil
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil
		}
		return &id
	}
	return get("agent_id"), get("stack_id"), get("deployment_object_id")
}

// Matches applies a subscription's filters (docs/webhooks.md#filters; the original
// stored and ignored them). Every set filter must hold:
//   - agent_id: the event is about that agent;
//   - stack_id: the event is about that stack (directly or through its
//     deployment object);
//   - labels: for every key/value pair, the agent or the stack involved has
//     the label "key:value" (or "key=value", or just "key" when the value
//     is empty) or the annotation key=value.
//
// An event about no agent or stack therefore never passes a filter that
// needs one.
func (f *Filters) Matches(s Subject) bool {
	if f == nil {
		return true
	}
	if f.AgentID != nil && (s.AgentID == nil || *s.AgentID != *f.AgentID) {
		return false
	}
	if f.StackID != nil && (s.StackID == nil || *s.StackID != *f.StackID) {
		return false
	}
	for k, v := range f.Labels {
		if !s.has(k, v) {
			return false
		}
	}
	return true
}

func (s Subject) has(key, value string) bool {
	for _, l := range s.Labels {
		if l == key+":"+value || l == key+"="+value || (value == "" && l == key) {
			return true
		}
	}
	for _, v := range s.Annotations[key] {
		if v == value {
			return true
		}
	}
	return false
}

// NeedsSubject reports whether evaluating f needs the event's subject
// looked up (labels/annotations come from the database).
func (f *Filters) NeedsSubject() bool { return f != nil && !f.Empty() }

// NeedsLabels reports whether f has a labels filter.
func (f *Filters) NeedsLabels() bool { return f != nil && len(f.Labels) > 0 }
