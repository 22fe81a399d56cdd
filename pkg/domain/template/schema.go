package template

import (
	"encoding/json"
	"errors"
	"strings"
)

// ErrSchemaRefused marks a schema that is valid JSON Schema but exceeds
// Brokkr's hard limits (size, depth, fan-out) or applies itself to the same
// value forever (a $ref cycle); the HTTP layer answers 422.
var ErrSchemaRefused = errors.New("JSON Schema refused")

// NumberValue is a json.Number in the params value model, exactly: int64
// when it is an integer that fits, else float64, else its text. The schema
// validator and the template engine both read params this way, so a
// parameter compares and prints the same in both.
func NumberValue(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n.String()
}

// SchemaValidator is the port for template parameter schemas (JSON Schema).
//
// Schemas are passed as JSON text, as stored in stack_templates.parameters_schema.
// Params are JSON-like Go values (map[string]any, []any, string, bool, nil,
// float64, json.Number or Go integer types).
type SchemaValidator interface {
	// ValidateSchema checks that schema is JSON and a valid JSON Schema. The
	// error message starts with "Invalid JSON: " when the text is not JSON and
	// with "Invalid JSON Schema: " when it does not compile.
	ValidateSchema(schema string) error

	// ApplyDefaults returns a deep copy of params in which every absent
	// property that has a "default" in the schema's "properties" is filled in,
	// recursively through nested object schemas (an absent object is created
	// when its schema has defaults for its children). params itself is never
	// modified. A non-object params is returned unchanged.
	ApplyDefaults(schema string, params any) (any, error)

	// Validate applies the defaults (as ApplyDefaults) and validates the
	// result. It returns the effective parameters, every violation found, and
	// a non-nil error only when the schema itself is unusable.
	Validate(schema string, params any) (withDefaults any, violations []Violation, err error)
}

// Violation is one parameter-validation failure. Pointer is the RFC 6901 JSON
// pointer of the offending value ("" for the root), Message a human-readable
// explanation in jsonschema-rs style (e.g. `100 is greater than the maximum of 20`).
type Violation struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

// String renders "<pointer>: <message>", or just the message at the root;
// this is the form used in the "validation_errors" array of a 400 response.
func (v Violation) String() string {
	if v.Pointer == "" {
		return v.Message
	}
	return v.Pointer + ": " + v.Message
}

// ViolationStrings renders each violation with String.
func ViolationStrings(vs []Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

// JoinViolations renders the violations as one "; "-separated line (for logs).
func JoinViolations(vs []Violation) string {
	return strings.Join(ViolationStrings(vs), "; ")
}
