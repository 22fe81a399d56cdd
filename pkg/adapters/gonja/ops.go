package gonja

import (
	"math"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Internal filters the rewriter (compile.go) targets. They implement Tera's
// semantics for variable lookups, printing, truthiness, operators and tests.
// An error input (e.g. an undefined variable) is propagated unchanged unless
// the filter is documented to consume it.

func internalFilters() map[string]exec.FilterFunction {
	m := map[string]exec.FilterFunction{
		fVar:   filterVar,
		fPath:  filterPath,
		fPrint: filterPrint,
		fBool:  filterBool,
		fNot:   filterNot,
		fNeg:   filterNeg,
		fPos:   filterPos,
		fTest:  filterTest,
	}
	for _, name := range binaryOps {
		m[name] = binaryOp(name)
	}
	return m
}

func guard(e *exec.Evaluator) (*renderState, *exec.Value) {
	st := stateFrom(e.Environment.Context)
	if err := st.check(); err != nil {
		return st, errValue(err)
	}
	return st, nil
}

// filterVar looks a variable path up: Args = [name, segment...],
// Kwargs["path"] = the path as written (for messages).
func filterVar(e *exec.Evaluator, _ *exec.Value, params *exec.VarArgs) *exec.Value {
	st, stop := guard(e)
	if stop != nil {
		return stop
	}
	if len(params.Args) == 0 {
		return errValue(errorf("invalid variable reference"))
	}
	name := params.Args[0].String()
	display := params.GetKeywordArgument("path", name).String()
	var cur any
	if name == "__tera_context" && st != nil {
		s, err := jsonEncode(st.params, true, st.maxBytes())
		if err != nil {
			return errValue(err)
		}
		cur = s
	} else {
		raw, ok := e.Environment.Context.Get(varPrefix + name)
		if !ok {
			return errValue(&undefinedError{path: display})
		}
		cur = nativeAny(raw, 0)
	}
	return walkPath(cur, params.Args[1:], display)
}

// filterPath looks a path up from a computed root (in).
func filterPath(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if _, stop := guard(e); stop != nil {
		return stop
	}
	if in.IsError() {
		return in
	}
	display := params.GetKeywordArgument("path", "expression").String()
	return walkPath(native(in), params.Args, display)
}

func walkPath(cur any, segs []*exec.Value, display string) *exec.Value {
	for _, seg := range segs {
		next, ok := step(cur, native(seg))
		if !ok {
			return errValue(&undefinedError{path: display})
		}
		cur = next
	}
	return exec.AsValue(cur)
}

// step follows one JSON-pointer-like segment: an object key (numbers are
// converted to strings) or an array index (numeric strings are accepted).
func step(cur any, key any) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		var k string
		switch t := key.(type) {
		case string:
			k = t
		case int64:
			k = strconv.FormatInt(t, 10)
		case float64:
			k = formatFloat(t)
		case bool:
			k = strconv.FormatBool(t)
		default:
			return nil, false
		}
		v, ok := c[k]
		return v, ok
	case []any:
		var idx int64
		switch t := key.(type) {
		case int64:
			idx = t
		case float64:
			if t != math.Trunc(t) {
				return nil, false
			}
			idx = int64(t)
		case string:
			i, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return nil, false
			}
			idx = i
		default:
			return nil, false
		}
		if idx < 0 || idx >= int64(len(c)) {
			return nil, false
		}
		return c[idx], true
	}
	return nil, false
}

// filterPrint renders the value the way Tera prints {{ }}.
func filterPrint(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	st, stop := guard(e)
	if stop != nil {
		return stop
	}
	if in.IsError() {
		return in
	}
	s, err := renderString(native(in), st.maxBytes())
	if err != nil {
		return errValue(err)
	}
	return exec.AsValue(s)
}

func limitErr(v *exec.Value) bool {
	return chainHas(asError(v), func(err error) bool {
		_, ok := err.(*template.LimitError)
		return ok
	})
}

// chainHas reports whether any error down err's chain satisfies pred.
func chainHas(err error, pred func(error) bool) bool {
	found := false
	seen := 0
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || found || depth > 200 || seen > 1000 {
			return
		}
		seen++
		if pred(e) {
			found = true
			return
		}
		for _, n := range unwrapOne(e) {
			walk(n, depth+1)
		}
	}
	walk(err, 0)
	return found
}

func undefinedIn(v *exec.Value) bool {
	if v == nil || !v.IsError() {
		return false
	}
	return chainHas(asError(v), func(err error) bool {
		_, ok := err.(*undefinedError)
		return ok
	})
}

// filterBool: Args[0] tells whether the expression is a variable reference
// (with optional filters), in which case any (non-limit) error counts as
// false, as in Tera's eval_as_bool.
func filterBool(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if _, stop := guard(e); stop != nil {
		return stop
	}
	if in.IsError() {
		if limitErr(in) {
			return in
		}
		if params.First().Bool() {
			return exec.AsValue(false)
		}
		return in
	}
	return exec.AsValue(truthy(native(in)))
}

// filterNot negates; `not undefined_var` is true (Tera).
func filterNot(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if _, stop := guard(e); stop != nil {
		return stop
	}
	if in.IsError() {
		if !limitErr(in) && params.First().Bool() {
			return exec.AsValue(true)
		}
		return in
	}
	return exec.AsValue(!truthy(native(in)))
}

func filterNeg(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if _, stop := guard(e); stop != nil {
		return stop
	}
	if in.IsError() {
		return in
	}
	switch t := native(in).(type) {
	case int64:
		if t == math.MinInt64 {
			return errValue(errorf("-(%d) results in an out of bounds i64", t))
		}
		return exec.AsValue(-t)
	case float64:
		return exec.AsValue(-t)
	default:
		return errValue(mathTypeError(t))
	}
}

func filterPos(e *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if _, stop := guard(e); stop != nil {
		return stop
	}
	if in.IsError() {
		return in
	}
	v := native(in)
	if _, ok := asFloat(v); !ok {
		return errValue(mathTypeError(v))
	}
	return exec.AsValue(v)
}

func mathTypeError(v any) error {
	switch t := v.(type) {
	case string:
		return errorf("Tried to do math with a string: `%s`", truncate(t, 100))
	case bool:
		return errorf("Tried to do math with a boolean: `%t`", t)
	}
	return errorf("Tried to do math with a value that is not a number: `%s`", shortJSON(v))
}

func binaryOp(name string) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		st, stop := guard(e)
		if stop != nil {
			return stop
		}
		if in.IsError() {
			return in
		}
		if len(params.Args) != 1 {
			return errValue(errorf("invalid operator call"))
		}
		out, err := applyOp(st, name, native(in), native(params.Args[0]))
		if err != nil {
			return errValue(err)
		}
		return exec.AsValue(out)
	}
}

func applyOp(st *renderState, name string, l, r any) (any, error) {
	switch name {
	case "brokkr:concat":
		ls, err := concatPart(l)
		if err != nil {
			return nil, err
		}
		rs, err := concatPart(r)
		if err != nil {
			return nil, err
		}
		if err := st.checkSize(len(ls) + len(rs)); err != nil {
			return nil, err
		}
		return ls + rs, nil
	case "brokkr:eq":
		return valueEqual(l, r), nil
	case "brokkr:ne":
		return !valueEqual(l, r), nil
	case "brokkr:lt", "brokkr:le", "brokkr:gt", "brokkr:ge":
		return compare(name, l, r)
	case "brokkr:in":
		return containsValue(r, l)
	}
	return arith(name, l, r)
}

func concatPart(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case float64:
		return formatFloat(t), nil
	case bool:
		return strconv.FormatBool(t), nil
	case nil:
		return "", nil
	}
	return "", errorf("Tried to concat a value that is not a string or a number: `%s`", shortJSON(v))
}

func compare(name string, l, r any) (any, error) {
	var c int
	lf, lok := asFloat(l)
	rf, rok := asFloat(r)
	switch {
	case lok && rok:
		if math.IsNaN(lf) || math.IsNaN(rf) {
			return nil, errorf("Comparison to NaN")
		}
		switch {
		case lf < rf:
			c = -1
		case lf > rf:
			c = 1
		}
		// Exact comparison for large integers.
		if li, ok := l.(int64); ok {
			if ri, ok := r.(int64); ok {
				switch {
				case li < ri:
					c = -1
				case li > ri:
					c = 1
				default:
					c = 0
				}
			}
		}
	default:
		ls, lok := l.(string)
		rs, rok := r.(string)
		if !lok || !rok {
			if !lok {
				return nil, mathTypeError(l)
			}
			return nil, mathTypeError(r)
		}
		c = strings.Compare(ls, rs)
	}
	switch name {
	case "brokkr:lt":
		return c < 0, nil
	case "brokkr:le":
		return c <= 0, nil
	case "brokkr:gt":
		return c > 0, nil
	default:
		return c >= 0, nil
	}
}

// containsValue is Tera's `in`: array membership, substring, object key.
func containsValue(container, item any) (bool, error) {
	switch c := container.(type) {
	case []any:
		for _, v := range c {
			if valueEqual(v, item) {
				return true, nil
			}
		}
		return false, nil
	case string:
		s, ok := item.(string)
		if !ok {
			return false, errorf("Tried to check if %s is in a string, but it isn't a string", shortJSON(item))
		}
		return strings.Contains(c, s), nil
	case map[string]any:
		s, ok := item.(string)
		if !ok {
			return false, errorf("Tried to check if %s is in a object, but it isn't a string", shortJSON(item))
		}
		_, found := c[s]
		return found, nil
	}
	return false, errorf("The `in` operator only supports strings, arrays and objects.")
}

func arith(name string, l, r any) (any, error) {
	if _, ok := asFloat(l); !ok {
		return nil, mathTypeError(l)
	}
	if _, ok := asFloat(r); !ok {
		return nil, mathTypeError(r)
	}
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	lf, _ := asFloat(l)
	rf, _ := asFloat(r)
	bothInt := lInt && rInt
	switch name {
	case "brokkr:add":
		if bothInt {
			s := li + ri
			if (s > li) != (ri > 0) {
				return nil, errorf("%d + %d results in an out of bounds i64", li, ri)
			}
			return s, nil
		}
		return lf + rf, nil
	case "brokkr:sub":
		if bothInt {
			d := li - ri
			if (d < li) != (ri > 0) {
				return nil, errorf("%d - %d results in an out of bounds i64", li, ri)
			}
			return d, nil
		}
		return lf - rf, nil
	case "brokkr:mul":
		if bothInt {
			if li == 0 || ri == 0 {
				return int64(0), nil
			}
			p := li * ri
			if p/ri != li || (li == -1 && ri == math.MinInt64) || (ri == -1 && li == math.MinInt64) {
				return nil, errorf("%d x %d results in an out of bounds i64", li, ri)
			}
			return p, nil
		}
		return lf * rf, nil
	case "brokkr:div":
		res := lf / rf
		if math.IsNaN(res) {
			return "NaN", nil
		}
		return res, nil
	case "brokkr:floordiv":
		if bothInt {
			if ri == 0 {
				return nil, errorf("Tried to divide by zero")
			}
			q := li / ri
			if (li%ri != 0) && ((li < 0) != (ri < 0)) {
				q--
			}
			return q, nil
		}
		return math.Floor(lf / rf), nil
	case "brokkr:mod":
		if bothInt {
			if ri == 0 {
				return nil, errorf("Tried to do a modulo by zero")
			}
			if ri == -1 {
				return int64(0), nil
			}
			return li % ri, nil
		}
		res := math.Mod(lf, rf)
		if math.IsNaN(res) {
			return "NaN", nil
		}
		return res, nil
	case "brokkr:pow":
		res := math.Pow(lf, rf)
		if bothInt && ri >= 0 && math.Abs(res) < 1<<53 {
			return int64(res), nil
		}
		return res, nil
	}
	return nil, errorf("unsupported operator")
}
