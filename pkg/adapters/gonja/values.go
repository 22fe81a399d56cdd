package gonja

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Template values follow Tera's (serde_json's) data model. Everything that
// flows through our filters, operators and control structures is normalised
// to one of:
//
//	nil, bool, int64, float64, string, []any, map[string]any
//
// Parameters are normalised once per render (normalizeParams); literals built
// by gonja (ValuesList, *exec.Dict, Go ints) are normalised on use (native).

// normalizeParams deep-copies JSON-like input into the value model. Integral
// float64 values become int64 (encoding/json decodes every number as float64,
// while serde_json keeps integers as integers, and Tera prints 3 rather than
// 3.0); json.Number is parsed exactly.
func normalizeParams(v any, depth int) any {
	if depth > 10_000 {
		return nil
	}
	if n, ok := goInteger(v); ok {
		return n
	}
	switch t := v.(type) {
	case nil:
		return nil
	case bool, string:
		return t
	case float64:
		return normFloat(t)
	case float32:
		return normFloat(float64(t))
	case json.Number:
		return template.NumberValue(t)
	case []any:
		return eachItem(t, func(e any) any { return normalizeParams(e, depth+1) })
	case map[string]any:
		return eachValue(t, func(e any) any { return normalizeParams(e, depth+1) })
	case []string:
		return eachItem(t, func(e string) any { return e })
	case map[string]string:
		return eachValue(t, func(e string) any { return e })
	case json.RawMessage:
		return normalizeJSON(t, depth)
	}
	// Anything else (structs, typed maps and slices): go through JSON, the
	// way serde would serialise it.
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return normalizeJSON(b, depth)
}

// normalizeJSON decodes JSON text (numbers kept exact as json.Number) and
// normalises the result; text that does not decode stays a string.
func normalizeJSON(b []byte, depth int) any {
	var x any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		return string(b)
	}
	return normalizeParams(x, depth+1)
}

// eachItem converts every item of a list into the value model.
func eachItem[T any](s []T, conv func(T) any) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = conv(e)
	}
	return out
}

// eachValue converts every value of a map into the value model.
func eachValue[T any](m map[string]T, conv func(T) any) map[string]any {
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = conv(e)
	}
	return out
}

func normFloat(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

// goInteger converts a value of one of Go's integer types to int64 (a
// uint64 beyond int64's range to float64); ok is false for anything else.
func goInteger(x any) (n any, ok bool) {
	switch t := x.(type) {
	case int:
		return int64(t), true
	case int8:
		return int64(t), true
	case int16:
		return int64(t), true
	case int32:
		return int64(t), true
	case int64:
		return t, true
	case uint:
		return uintToValue(uint64(t)), true
	case uint8:
		return int64(t), true
	case uint16:
		return int64(t), true
	case uint32:
		return int64(t), true
	case uint64:
		return uintToValue(t), true
	}
	return nil, false
}

func uintToValue(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return float64(u)
}

// native converts a gonja value to the value model. Values already in the
// model (maps and slices of normalised params) are returned as is.
func native(v *exec.Value) any {
	if v == nil || v.IsNil() {
		return nil
	}
	return nativeAny(v.Interface(), 0)
}

func nativeAny(x any, depth int) any {
	if depth > 1000 {
		return nil
	}
	if n, ok := goInteger(x); ok {
		return n
	}
	switch t := x.(type) {
	case nil:
		return nil
	case bool, string, float64, map[string]any, []any, undefinedValue:
		return t
	case float32:
		return float64(t)
	case *exec.Value:
		if t == nil || t.IsNil() {
			return nil
		}
		return nativeAny(t.Interface(), depth+1)
	case exec.ValuesList:
		return eachItem(t, func(e *exec.Value) any { return nativeAny(e, depth+1) })
	case []*exec.Value:
		return eachItem(t, func(e *exec.Value) any { return nativeAny(e, depth+1) })
	case *exec.Dict:
		if t == nil {
			return nil
		}
		return nativeDict(t, depth)
	case exec.Dict:
		return nativeDict(&t, depth)
	case error:
		return t
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintToValue(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = nativeAny(rv.Index(i).Interface(), depth+1)
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = nativeAny(it.Value().Interface(), depth+1)
		}
		return out
	}
	return fmt.Sprint(x)
}

func nativeDict(d *exec.Dict, depth int) map[string]any {
	out := make(map[string]any, len(d.Pairs))
	for _, p := range d.Pairs {
		if p == nil {
			continue
		}
		k := nativeAny(p.Key, depth+1)
		out[renderScalarKey(k)] = nativeAny(p.Value, depth+1)
	}
	return out
}

func renderScalarKey(k any) string {
	switch t := k.(type) {
	case string:
		return t
	case nil:
		return ""
	}
	var b strings.Builder
	_ = renderValue(&b, k, 1<<20)
	return b.String()
}

// truthy is Tera's ValueTruthy.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case int64:
		return t != 0
	case float64:
		return t != 0 && !math.IsNaN(t)
	case string:
		return t != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	case error:
		return false
	}
	return true
}

// formatFloat prints a float the way Rust's Display for f64 does: shortest
// round-trip digits, never an exponent, no trailing ".0" (3.0 → "3").
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// sizeWriter is a strings.Builder that refuses to grow past max bytes.
type sizeWriter struct {
	strings.Builder
	max int
}

func (w *sizeWriter) add(s string) error {
	if w.Len()+len(s) > w.max {
		return errValueTooLarge(w.max)
	}
	w.WriteString(s)
	return nil
}

// renderValue writes v the way Tera prints it in {{ }}: strings raw, null
// empty, bools true/false, arrays "[a, b]" with rendered items, objects
// "[object]".
func renderValue(b *strings.Builder, v any, max int) error {
	w := &sizeWriter{max: max}
	if err := renderInto(w, v, 0); err != nil {
		return err
	}
	if b.Len()+w.Len() > max {
		return errValueTooLarge(max)
	}
	b.WriteString(w.String())
	return nil
}

func renderInto(w *sizeWriter, v any, depth int) error {
	if depth > 1000 {
		return w.add("[...]")
	}
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		return w.add(t)
	case bool:
		return w.add(strconv.FormatBool(t))
	case int64:
		return w.add(strconv.FormatInt(t, 10))
	case float64:
		return w.add(formatFloat(t))
	case []any:
		if err := w.add("["); err != nil {
			return err
		}
		for i, e := range t {
			if i > 0 {
				if err := w.add(", "); err != nil {
					return err
				}
			}
			if err := renderInto(w, e, depth+1); err != nil {
				return err
			}
		}
		return w.add("]")
	case map[string]any:
		return w.add("[object]")
	}
	return w.add(fmt.Sprint(v))
}

// renderString renders v as a string (Tera's as_str / value render).
func renderString(v any, max int) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	var b strings.Builder
	if err := renderValue(&b, v, max); err != nil {
		return "", err
	}
	return b.String(), nil
}

// jsonEncode mirrors serde_json::to_string(_pretty): object keys sorted, no
// HTML escaping, floats keep a fractional part (3.0).
func jsonEncode(v any, pretty bool, max int) (string, error) {
	w := &sizeWriter{max: max}
	if err := jsonInto(w, v, pretty, 0); err != nil {
		return "", err
	}
	return w.String(), nil
}

func jsonIndent(w *sizeWriter, depth int) error {
	if err := w.add("\n"); err != nil {
		return err
	}
	return w.add(strings.Repeat("  ", min(depth, 1000)))
}

func jsonInto(w *sizeWriter, v any, pretty bool, depth int) error {
	if depth > 1000 {
		return w.add("null")
	}
	switch t := v.(type) {
	case nil:
		return w.add("null")
	case bool:
		return w.add(strconv.FormatBool(t))
	case int64:
		return w.add(strconv.FormatInt(t, 10))
	case float64:
		return w.add(jsonFloat(t))
	case string:
		return w.add(jsonString(t))
	case []any:
		if len(t) == 0 {
			return w.add("[]")
		}
		if err := w.add("["); err != nil {
			return err
		}
		for i, e := range t {
			if err := jsonItem(w, i, pretty, depth); err != nil {
				return err
			}
			if err := jsonInto(w, e, pretty, depth+1); err != nil {
				return err
			}
		}
		return jsonClose(w, "]", pretty, depth)
	case map[string]any:
		if len(t) == 0 {
			return w.add("{}")
		}
		if err := w.add("{"); err != nil {
			return err
		}
		sep := ":"
		if pretty {
			sep = ": "
		}
		for i, k := range sortedKeys(t) {
			if err := jsonItem(w, i, pretty, depth); err != nil {
				return err
			}
			if err := w.add(jsonString(k) + sep); err != nil {
				return err
			}
			if err := jsonInto(w, t[k], pretty, depth+1); err != nil {
				return err
			}
		}
		return jsonClose(w, "}", pretty, depth)
	}
	return w.add(jsonString(fmt.Sprint(v)))
}

// jsonItem starts item i of an array or object at depth: a comma after the
// first item and, when pretty, a new line one level deeper.
func jsonItem(w *sizeWriter, i int, pretty bool, depth int) error {
	if i > 0 {
		if err := w.add(","); err != nil {
			return err
		}
	}
	if !pretty {
		return nil
	}
	return jsonIndent(w, depth+1)
}

// jsonClose ends an array or object at depth; when pretty, the closing
// bracket stands on its own line.
func jsonClose(w *sizeWriter, bracket string, pretty bool, depth int) error {
	if pretty {
		if err := jsonIndent(w, depth); err != nil {
			return err
		}
	}
	return w.add(bracket)
}

// jsonFloat prints a float like serde_json: NaN and infinities are null, a
// whole number keeps ".0", very small or large magnitudes use an exponent
// without "+" or leading zeros (1e16, 1e-7).
func jsonFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-5 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		s = strings.Replace(s, "e+", "e", 1)
		s = strings.Replace(s, "e0", "e", 1)
		return strings.Replace(s, "e-0", "e-", 1)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// jsonString quotes s like serde_json: only '"', '\\' and control characters
// are escaped.
func jsonString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// valueEqual is JSON equality where numbers compare by value (Tera
// monomorphises numbers to f64 before ==).
func valueEqual(a, b any) bool {
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valueEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !valueEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// asFloat returns a number as float64.
func asFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case int64:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

// shortJSON renders v for error messages, truncated.
func shortJSON(v any) string {
	s, err := jsonEncode(v, false, 4096)
	if err != nil {
		return "<value too large>"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
