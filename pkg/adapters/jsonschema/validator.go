// Package jsonschema implements the template.SchemaValidator port on
// github.com/santhosh-tekuri/jsonschema/v6.
//
// Drafts 2020-12, 2019-09, 7, 6 and 4 are recognised through "$schema"; a
// schema without "$schema" is compiled as draft 2020-12 unless another
// default is configured. Remote references are never fetched (neither files
// nor URLs): a schema must be self-contained. Violation messages follow the
// wording of jsonschema-rs 0.18, which the original Brokkr uses (e.g.
// `"service_name" is a required property`,
// `100 is greater than the maximum of 20`).
package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"

	js "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// schemaURL is the (never fetched) location the schema is registered under.
const schemaURL = "https://schemas.brokkr.invalid/parameters.json"

// Draft selects the draft used for schemas without "$schema".
type Draft int

const (
	Draft2020 Draft = iota
	Draft2019
	Draft7
	Draft6
	Draft4
)

func (d Draft) lib() *js.Draft {
	switch d {
	case Draft2019:
		return js.Draft2019
	case Draft7:
		return js.Draft7
	case Draft6:
		return js.Draft6
	case Draft4:
		return js.Draft4
	}
	return js.Draft2020
}

// Option configures a Validator.
type Option func(*Validator)

// WithDefaultDraft sets the draft for schemas without "$schema" (default
// Draft2020). jsonschema-rs, used by the original, defaults to draft 7.
func WithDefaultDraft(d Draft) Option { return func(v *Validator) { v.draft = d } }

// WithoutFormatAssertions makes "format" an annotation only.
func WithoutFormatAssertions() Option { return func(v *Validator) { v.formats = false } }

// Validator implements template.SchemaValidator. It is safe for concurrent
// use and caches compiled schemas by text.
type Validator struct {
	draft   Draft
	formats bool

	mu    sync.Mutex
	cache map[string]*compiledSchema
}

var _ template.SchemaValidator = (*Validator)(nil)

const maxCache = 256

type compiledSchema struct {
	doc    any
	schema *js.Schema
}

// New returns a Validator.
func New(opts ...Option) *Validator {
	v := &Validator{draft: Draft2020, formats: true, cache: map[string]*compiledSchema{}}
	for _, o := range opts {
		o(v)
	}
	return v
}

// noLoader refuses to load any external resource.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not supported (%s)", url)
}

// SchemaError is returned by ValidateSchema (and by ApplyDefaults/Validate for
// an unusable schema). Its message starts with "Invalid JSON: " or
// "Invalid JSON Schema: ".
type SchemaError struct {
	// NotJSON is true when the text is not JSON at all.
	NotJSON bool
	Detail  string
}

func (e *SchemaError) Error() string {
	if e.NotJSON {
		return "Invalid JSON: " + e.Detail
	}
	return "Invalid JSON Schema: " + e.Detail
}

// ValidateSchema implements template.SchemaValidator.
func (v *Validator) ValidateSchema(schema string) error {
	_, err := v.compile(schema)
	return err
}

func (v *Validator) compile(schema string) (*compiledSchema, error) {
	v.mu.Lock()
	if c, ok := v.cache[schema]; ok {
		v.mu.Unlock()
		return c, nil
	}
	v.mu.Unlock()

	if err := checkText(schema); err != nil {
		return nil, err
	}
	doc, err := js.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return nil, &SchemaError{NotJSON: true, Detail: jsonErrorDetail(err, schema)}
	}
	c := js.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(v.draft.lib())
	if v.formats {
		c.AssertFormat()
	}
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, &SchemaError{Detail: err.Error()}
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, &SchemaError{Detail: compileErrorDetail(err, doc)}
	}
	if err := checkCompiled(sch); err != nil {
		return nil, err
	}
	cs := &compiledSchema{doc: doc, schema: sch}
	v.mu.Lock()
	if len(v.cache) >= maxCache {
		v.cache = map[string]*compiledSchema{}
	}
	v.cache[schema] = cs
	v.mu.Unlock()
	return cs, nil
}

func jsonErrorDetail(err error, text string) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := offsetToLineCol(text, int(se.Offset))
		return fmt.Sprintf("%s at line %d column %d", se.Error(), line, col)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON input"
	}
	return err.Error()
}

func offsetToLineCol(s string, off int) (int, int) {
	if off > len(s) {
		off = len(s)
	}
	if off < 0 {
		off = 0
	}
	before := s[:off]
	line := strings.Count(before, "\n") + 1
	return line, off - strings.LastIndexByte(before, '\n')
}

// compileErrorDetail turns the library's (multi-line) compile errors into
// one line.
func compileErrorDetail(err error, doc any) string {
	var sve *js.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *js.ValidationError
		if errors.As(sve.Err, &ve) {
			var parts []string
			for _, viol := range flatten(ve, doc) {
				parts = append(parts, viol.String())
			}
			if len(parts) > 0 {
				return "schema is not valid against its metaschema: " + strings.Join(parts, "; ")
			}
		}
		return "schema is not valid against its metaschema: " + oneLine(sve.Err.Error())
	}
	return oneLine(err.Error())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ApplyDefaults implements template.SchemaValidator.
func (v *Validator) ApplyDefaults(schema string, params any) (any, error) {
	c, err := v.compile(schema)
	if err != nil {
		return nil, err
	}
	return applyDefaults(c.doc, normalize(params), 0), nil
}

// Validate implements template.SchemaValidator: defaults first, then
// validation of the result. Violations are sorted by pointer, then message.
func (v *Validator) Validate(schema string, params any) (any, []template.Violation, error) {
	c, err := v.compile(schema)
	if err != nil {
		return nil, nil, err
	}
	withDefaults := applyDefaults(c.doc, normalize(params), 0)
	verr := c.schema.Validate(withDefaults)
	if verr == nil {
		return withDefaults, nil, nil
	}
	var ve *js.ValidationError
	if !errors.As(verr, &ve) {
		return withDefaults, []template.Violation{{Message: oneLine(verr.Error())}}, nil
	}
	viols := flatten(ve, withDefaults)
	sort.SliceStable(viols, func(i, j int) bool {
		if viols[i].Pointer != viols[j].Pointer {
			return viols[i].Pointer < viols[j].Pointer
		}
		return viols[i].Message < viols[j].Message
	})
	return withDefaults, dedupe(viols), nil
}

func dedupe(vs []template.Violation) []template.Violation {
	out := vs[:0]
	for i, v := range vs {
		if i > 0 && v == vs[i-1] {
			continue
		}
		out = append(out, v)
	}
	return out
}

// ---------------------------------------------------------------------------
// defaults

// applyDefaults returns a copy of params with the "default" of every absent
// property of "properties" filled in, recursively. An absent property whose
// schema (an object schema) has defaults for its own properties is created.
func applyDefaults(schema any, params any, depth int) any {
	if depth > 64 {
		return params
	}
	sch, ok := schema.(map[string]any)
	if !ok {
		return params
	}
	props, _ := sch["properties"].(map[string]any)
	if params == nil && len(props) > 0 && hasDefaults(sch, depth) {
		params = map[string]any{}
	}
	obj, ok := params.(map[string]any)
	if !ok || len(props) == 0 {
		return params
	}
	out := make(map[string]any, len(obj)+len(props))
	for k, val := range obj {
		out[k] = val
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		propSchema, _ := props[name].(map[string]any)
		if propSchema == nil {
			continue
		}
		cur, present := out[name]
		switch {
		case !present:
			if def, has := propSchema["default"]; has {
				out[name] = normalize(def)
			} else if hasDefaults(propSchema, depth+1) {
				out[name] = applyDefaults(propSchema, map[string]any{}, depth+1)
			}
		default:
			if _, isObj := cur.(map[string]any); isObj {
				out[name] = applyDefaults(propSchema, cur, depth+1)
			}
		}
	}
	return out
}

// hasDefaults reports whether an object schema would contribute a default
// to an empty object.
func hasDefaults(sch map[string]any, depth int) bool {
	if depth > 64 {
		return false
	}
	props, _ := sch["properties"].(map[string]any)
	for _, p := range props {
		ps, _ := p.(map[string]any)
		if ps == nil {
			continue
		}
		if _, ok := ps["default"]; ok {
			return true
		}
		if hasDefaults(ps, depth+1) {
			return true
		}
	}
	return false
}

// normalize deep-copies JSON-like values into map[string]any / []any, with
// json.Number converted to int64 or float64.
func normalize(v any) any {
	switch t := v.(type) {
	case nil, bool, string, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return t
	case json.Number:
		return template.NumberValue(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	case json.RawMessage:
		doc, err := js.UnmarshalJSON(bytes.NewReader(t))
		if err != nil {
			return string(t)
		}
		return normalize(doc)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	doc, err := js.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return string(b)
	}
	return normalize(doc)
}

// ---------------------------------------------------------------------------
// violations

// flatten walks the library's error tree and returns one violation per leaf
// (anyOf/oneOf/not/contains failures are reported at their own level, as
// jsonschema-rs does). instance is used to print the offending values; nil
// prints them from the error kinds only.
func flatten(ve *js.ValidationError, instance any) []template.Violation {
	var out []template.Violation
	var walk func(e *js.ValidationError, depth int)
	walk = func(e *js.ValidationError, depth int) {
		if e == nil || depth > 100 || len(out) > 1000 {
			return
		}
		switch e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf, *kind.Not, *kind.Contains, *kind.FalseSchema:
			out = append(out, leaf(e, instance)...)
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c, depth+1)
			}
			return
		}
		switch e.ErrorKind.(type) {
		case *kind.Group, *kind.Schema, *kind.Reference, *kind.AllOf:
			return
		}
		out = append(out, leaf(e, instance)...)
	}
	walk(ve, 0)
	return out
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// lookup resolves an instance location.
func lookup(doc any, tokens []string) (any, bool) {
	cur := doc
	for _, t := range tokens {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[t]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// display renders a JSON value compactly, like serde_json's Display.
func display(v any) string {
	switch t := v.(type) {
	case float64:
		if t == float64(int64(t)) && t < 1e15 && t > -1e15 {
			return strconv.FormatInt(int64(t), 10)
		}
		return strconv.FormatFloat(t, 'g', -1, 64)
	case *big.Rat:
		return ratString(t)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return s
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "null"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func quoteList(items []string, q string) string {
	parts := make([]string, len(items))
	for i, s := range items {
		if q == `"` {
			parts[i] = strconv.Quote(s)
		} else {
			parts[i] = q + s + q
		}
	}
	return strings.Join(parts, ", ")
}

var printer = message.NewPrinter(language.English)

// leaf renders one error in jsonschema-rs 0.18's words.
func leaf(e *js.ValidationError, instance any) []template.Violation {
	ptr := pointer(e.InstanceLocation)
	inst := "null"
	if instance != nil {
		if v, ok := lookup(instance, e.InstanceLocation); ok {
			inst = display(v)
		}
	}
	one := func(msg string) []template.Violation { return []template.Violation{{Pointer: ptr, Message: msg}} }
	// required, dependencies and dependentRequired all report each missing
	// property as its own violation.
	missing := func(props []string) []template.Violation {
		var out []template.Violation
		for _, m := range props {
			out = append(out, template.Violation{Pointer: ptr, Message: strconv.Quote(m) + " is a required property"})
		}
		return out
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return missing(k.Missing)
	case *kind.Dependency:
		return missing(k.Missing)
	case *kind.DependentRequired:
		return missing(k.Missing)
	case *kind.Type:
		if len(k.Want) == 1 {
			return one(fmt.Sprintf("%s is not of type %q", inst, k.Want[0]))
		}
		return one(fmt.Sprintf("%s is not of types %s", inst, quoteList(k.Want, `"`)))
	case *kind.Minimum:
		return one(fmt.Sprintf("%s is less than the minimum of %s", inst, ratString(k.Want)))
	case *kind.Maximum:
		return one(fmt.Sprintf("%s is greater than the maximum of %s", inst, ratString(k.Want)))
	case *kind.ExclusiveMinimum:
		return one(fmt.Sprintf("%s is less than or equal to the minimum of %s", inst, ratString(k.Want)))
	case *kind.ExclusiveMaximum:
		return one(fmt.Sprintf("%s is greater than or equal to the maximum of %s", inst, ratString(k.Want)))
	case *kind.MultipleOf:
		return one(fmt.Sprintf("%s is not a multiple of %s", inst, ratString(k.Want)))
	case *kind.MinLength:
		return one(fmt.Sprintf("%s is shorter than %d %s", inst, k.Want, plural(k.Want, "character", "characters")))
	case *kind.MaxLength:
		return one(fmt.Sprintf("%s is longer than %d %s", inst, k.Want, plural(k.Want, "character", "characters")))
	case *kind.Pattern:
		return one(fmt.Sprintf("%s does not match %s", inst, strconv.Quote(k.Want)))
	case *kind.Enum:
		return one(fmt.Sprintf("%s is not one of %s", inst, display(k.Want)))
	case *kind.Const:
		return one(fmt.Sprintf("%s was expected", display(k.Want)))
	case *kind.Format:
		return one(fmt.Sprintf("%s is not a %q", inst, k.Want))
	case *kind.MinItems:
		return one(fmt.Sprintf("%s has less than %d %s", inst, k.Want, plural(k.Want, "item", "items")))
	case *kind.MaxItems:
		return one(fmt.Sprintf("%s has more than %d %s", inst, k.Want, plural(k.Want, "item", "items")))
	case *kind.UniqueItems:
		return one(fmt.Sprintf("%s has non-unique elements", inst))
	case *kind.MinProperties:
		return one(fmt.Sprintf("%s has less than %d %s", inst, k.Want, plural(k.Want, "property", "properties")))
	case *kind.MaxProperties:
		return one(fmt.Sprintf("%s has more than %d %s", inst, k.Want, plural(k.Want, "property", "properties")))
	case *kind.AdditionalProperties:
		return one(fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)",
			quoteList(k.Properties, "'"), plural(len(k.Properties), "was", "were")))
	case *kind.AdditionalItems:
		return one(fmt.Sprintf("Additional items are not allowed (%d %s unexpected)", k.Count, plural(k.Count, "item was", "items were")))
	case *kind.AnyOf:
		return one(fmt.Sprintf("%s is not valid under any of the given schemas", inst))
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			return one(fmt.Sprintf("%s is not valid under any of the given schemas", inst))
		}
		return one(fmt.Sprintf("%s is valid under more than one of the given schemas", inst))
	case *kind.Not:
		return one(fmt.Sprintf("%s is not allowed by the 'not' schema", inst))
	case *kind.Contains:
		return one(fmt.Sprintf("None of %s are valid under the given schema", inst))
	case *kind.MinContains:
		return one(fmt.Sprintf("%s does not contain at least %d matching %s", inst, k.Want, plural(k.Want, "item", "items")))
	case *kind.MaxContains:
		return one(fmt.Sprintf("%s contains more than %d matching %s", inst, k.Want, plural(k.Want, "item", "items")))
	case *kind.FalseSchema:
		return one(fmt.Sprintf("False schema does not allow %s", inst))
	case *kind.PropertyNames:
		return one(fmt.Sprintf("property name %q is invalid", k.Property))
	case *kind.ContentEncoding:
		return one(fmt.Sprintf("%s is not compliant with %q content encoding", inst, k.Want))
	case *kind.ContentMediaType:
		return one(fmt.Sprintf("%s is not compliant with %q media type", inst, k.Want))
	case *kind.InvalidJsonValue:
		return one(fmt.Sprintf("%s is not a valid JSON value", display(fmt.Sprint(k.Value))))
	}
	// The library's own wording; its kinds need a printer (nil panics).
	return one(oneLine(e.ErrorKind.LocalizedString(printer)))
}
