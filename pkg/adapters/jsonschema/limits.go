package jsonschema

import (
	"fmt"

	js "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Hard limits on a parameters schema, checked before and right after
// compiling, so that neither compiling nor validating can run away: a
// ~90 KB schema nested 9,000 deep once kept the templating service busy for
// minutes. Real parameter schemas are a few KB and a few levels deep.
const (
	// MaxSchemaBytes bounds the schema text.
	MaxSchemaBytes = 256 << 10
	// MaxSchemaDepth bounds the JSON nesting of the schema text.
	MaxSchemaDepth = 64
	// MaxSchemaCost bounds how many subschemas may apply to one value of
	// the parameters: the sum over every applicator path, $refs followed,
	// so that anyOf-of-anyOf chains through $defs (exponential fan-out)
	// are refused before anything is validated.
	MaxSchemaCost = 10000
)

// LimitError is a schema refused by the limits above or for a $ref cycle
// that applies a schema to the same value forever. The HTTP layer answers
// 422: the schema is valid JSON Schema, just one Brokkr will not run.
type LimitError struct{ Detail string }

func (e *LimitError) Error() string { return "Invalid JSON Schema: " + e.Detail }

// Unwrap makes errors.Is(err, template.ErrSchemaRefused) true.
func (e *LimitError) Unwrap() error { return template.ErrSchemaRefused }

// checkText enforces MaxSchemaBytes and MaxSchemaDepth on the raw text,
// before it is parsed: a linear scan that allocates nothing.
func checkText(schema string) error {
	if len(schema) > MaxSchemaBytes {
		return &LimitError{Detail: fmt.Sprintf("schema is larger than %d bytes", MaxSchemaBytes)}
	}
	depth, inString := 0, false
	for i := 0; i < len(schema); i++ {
		c := schema[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > MaxSchemaDepth {
				return &LimitError{Detail: fmt.Sprintf("schema is nested deeper than %d levels", MaxSchemaDepth)}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// inPlace lists the subschemas that apply to the same value as s.
func inPlace(s *js.Schema) []*js.Schema {
	out := make([]*js.Schema, 0, 8)
	add := func(c ...*js.Schema) {
		for _, x := range c {
			if x != nil {
				out = append(out, x)
			}
		}
	}
	add(s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else)
	if s.DynamicRef != nil {
		add(s.DynamicRef.Ref)
	}
	add(s.AllOf...)
	add(s.AnyOf...)
	add(s.OneOf...)
	for _, d := range s.DependentSchemas {
		add(d)
	}
	for _, d := range s.Dependencies {
		if sch, ok := d.(*js.Schema); ok {
			add(sch)
		}
	}
	return out
}

// descending lists the subschemas that apply to values inside s's value.
func descending(s *js.Schema) []*js.Schema {
	var out []*js.Schema
	add := func(c ...*js.Schema) {
		for _, x := range c {
			if x != nil {
				out = append(out, x)
			}
		}
	}
	for _, p := range s.Properties {
		add(p)
	}
	for _, p := range s.PatternProperties {
		add(p)
	}
	if sch, ok := s.AdditionalProperties.(*js.Schema); ok {
		add(sch)
	}
	if sch, ok := s.AdditionalItems.(*js.Schema); ok {
		add(sch)
	}
	switch items := s.Items.(type) {
	case *js.Schema:
		add(items)
	case []*js.Schema:
		add(items...)
	}
	add(s.PropertyNames, s.Contains, s.Items2020, s.UnevaluatedItems, s.UnevaluatedProperties, s.ContentSchema)
	add(s.PrefixItems...)
	return out
}

// checkCompiled refuses an in-place $ref cycle (a schema applied to the
// same value forever: `{"$ref": "#"}`, or two $defs referring to each other
// through allOf) and a cost above MaxSchemaCost. Recursion through
// properties or items is fine: it ends with the value's depth.
func checkCompiled(root *js.Schema) error {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[*js.Schema]int{}
	cost := map[*js.Schema]int{}
	var visit func(s *js.Schema) (int, error)
	// visit returns the in-place cost of s: how many schemas apply to one
	// value when s does, s included.
	visit = func(s *js.Schema) (int, error) {
		switch state[s] {
		case onStack:
			return 0, &LimitError{Detail: fmt.Sprintf("$ref cycle: %s applies to the same value again without end", s.Location)}
		case done:
			return cost[s], nil
		}
		state[s] = onStack
		total := 1
		for _, c := range inPlace(s) {
			n, err := visit(c)
			if err != nil {
				return 0, err
			}
			if total += n; total > MaxSchemaCost {
				return 0, &LimitError{Detail: fmt.Sprintf("schema applies more than %d subschemas to one value", MaxSchemaCost)}
			}
		}
		state[s] = done
		cost[s] = total
		return total, nil
	}
	// Every reachable schema is checked, so a cycle under a property is
	// found too; descending edges are followed once per schema.
	seen := map[*js.Schema]bool{}
	queue := []*js.Schema{root}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if seen[s] {
			continue
		}
		seen[s] = true
		if _, err := visit(s); err != nil {
			return err
		}
		queue = append(queue, inPlace(s)...)
		queue = append(queue, descending(s)...)
	}
	return nil
}
