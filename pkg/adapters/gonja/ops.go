package gonja

import (
	"math"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Internal filters the rewriter (compile.go) targets. They implement Tera's
// semantics for variable lookups, printing, truthiness, operators and tests.
// An error input (e.g. an undefined variable) is propagated unchanged unless
// the filter is documented to consume it.

func internalFilters() map[string]exec.FilterFunction {
	m := map[string]exec.FilterFunction{
		fVar:   internal(fVar, opVar),
		fPath:  internal(fPath, opPath),
		fPrint: internal(fPrint, opPrint),
		fBool:  internal(fBool, opBool),
		fNot:   internal(fNot, opNot),
		fNeg:   internal(fNeg, opNeg),
		fPos:   internal(fPos, opPos),
		fTest:  internal(fTest, opTest),
		fLit:   internal(fLit, opLit),
	}
	for _, name := range binaryOps {
		m[name] = internal(name, binaryOp(name))
	}
	return m
}

// icall is one invocation of an internal filter.
type icall struct {
	e      *exec.Evaluator
	st     *renderState
	in     *exec.Value
	params *exec.VarArgs
}

// input returns the input value; a gonja error is returned as error (it can
// only reach here for the error-consuming filters, see nestFilter).
func (c *icall) input() (any, error) {
	if c.in.IsError() {
		return nil, asError(c.in)
	}
	return native(c.in), nil
}

// definedInput is the input of an operation that means nothing for an
// undefined value: an input error is passed on unchanged, an undefined
// input is reported.
func (c *icall) definedInput() (any, error) {
	in, err := c.input()
	if err != nil {
		return nil, propagated{c.in}
	}
	if u, ok := in.(undefinedValue); ok {
		return nil, u.err()
	}
	return in, nil
}

func (c *icall) arg(i int) any {
	if i < len(c.params.Args) {
		return native(c.params.Args[i])
	}
	return nil
}

// propagated marks an input error that must be passed on unchanged.
type propagated struct{ v *exec.Value }

func (propagated) Error() string { return "propagated" }

func internal(name string, fn func(c *icall) (any, error)) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		st := stateFrom(e.Environment.Context)
		if err := st.check(); err != nil {
			return st.fail("filter", name, err)
		}
		out, err := fn(&icall{e: e, st: st, in: in, params: params})
		if err != nil {
			if p, ok := err.(propagated); ok {
				return p.v
			}
			return st.fail("filter", name, err)
		}
		return exec.AsValue(out)
	}
}

// opVar looks a variable path up: Args = [name, segment...],
// Kwargs["path"] = the path as written (for messages). A missing variable,
// key or index yields an undefinedValue.
func opVar(c *icall) (any, error) {
	if len(c.params.Args) == 0 {
		return nil, errorf("invalid variable reference")
	}
	name := c.params.Args[0].String()
	display := c.params.GetKeywordArgument("path", name).String()
	var cur any
	if name == "__tera_context" && c.st != nil {
		s, err := jsonEncode(c.st.params, true, c.st.maxBytes())
		if err != nil {
			return nil, err
		}
		cur = s
	} else {
		raw, ok := c.e.Environment.Context.Get(varPrefix + name)
		if !ok {
			return undefinedValue{path: display}, nil
		}
		cur = nativeAny(raw, 0)
	}
	return walkPath(cur, c.params.Args[1:], display)
}

// opPath looks a path up from a computed root (the input).
func opPath(c *icall) (any, error) {
	in, err := c.input()
	if err != nil {
		return nil, propagated{c.in}
	}
	display := c.params.GetKeywordArgument("path", "expression").String()
	if _, ok := in.(undefinedValue); ok {
		return undefinedValue{path: display}, nil
	}
	return walkPath(in, c.params.Args, display)
}

func walkPath(cur any, segs []*exec.Value, display string) (any, error) {
	for _, seg := range segs {
		key := native(seg)
		if u, ok := key.(undefinedValue); ok {
			return nil, u.err()
		}
		next, ok := step(cur, key)
		if !ok {
			return undefinedValue{path: display}, nil
		}
		cur = next
	}
	return cur, nil
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

// opPrint renders the value the way Tera prints {{ }}.
func opPrint(c *icall) (any, error) {
	in, err := c.definedInput()
	if err != nil {
		return nil, err
	}
	return renderString(in, c.st.maxBytes())
}

// opBool: Args[0] tells whether the expression is a variable reference (with
// optional filters). For those, undefined and any error count as false, as in
// Tera's eval_as_bool; the rewriter then nests the expression so that its
// errors reach this filter.
func opBool(c *icall) (any, error) {
	pathish, _ := c.arg(0).(bool)
	in, err := c.input()
	if err != nil {
		if pathish {
			return false, nil
		}
		return nil, propagated{c.in}
	}
	if _, ok := in.(undefinedValue); ok {
		if pathish {
			return false, nil
		}
		return nil, in.(undefinedValue).err()
	}
	return truthy(in), nil
}

// opNot negates; `not undefined_var` is true (Tera).
func opNot(c *icall) (any, error) {
	pathish, _ := c.arg(0).(bool)
	in, err := c.input()
	if err != nil {
		return nil, propagated{c.in}
	}
	if u, ok := in.(undefinedValue); ok {
		if pathish {
			return true, nil
		}
		return nil, u.err()
	}
	return !truthy(in), nil
}

func opNeg(c *icall) (any, error) {
	in, err := c.definedInput()
	if err != nil {
		return nil, err
	}
	switch t := in.(type) {
	case int64:
		if t == math.MinInt64 {
			return nil, errorf("-(%d) results in an out of bounds i64", t)
		}
		return -t, nil
	case float64:
		return -t, nil
	}
	return nil, mathTypeError(in)
}

func opPos(c *icall) (any, error) {
	in, err := c.definedInput()
	if err != nil {
		return nil, err
	}
	if _, ok := asFloat(in); !ok {
		return nil, mathTypeError(in)
	}
	return in, nil
}

// opLit validates a list or dict literal: gonja evaluates the items without
// checking them for errors.
func opLit(c *icall) (any, error) {
	if c.in.IsError() {
		return nil, propagated{c.in}
	}
	if err := checkLiteral(c.in.Interface(), 0); err != nil {
		return nil, err
	}
	return native(c.in), nil
}

func checkLiteral(x any, depth int) error {
	if depth > 1000 {
		return errorf("literal nested too deeply")
	}
	switch t := x.(type) {
	case *exec.Value:
		if t == nil {
			return nil
		}
		if t.IsError() {
			return asError(t)
		}
		return checkLiteral(t.Interface(), depth+1)
	case exec.ValuesList:
		for _, v := range t {
			if err := checkLiteral(v, depth+1); err != nil {
				return err
			}
		}
	case *exec.Dict:
		if t == nil {
			return nil
		}
		for _, p := range t.Pairs {
			if p == nil {
				continue
			}
			if err := checkLiteral(p.Key, depth+1); err != nil {
				return err
			}
			if err := checkLiteral(p.Value, depth+1); err != nil {
				return err
			}
		}
	case undefinedValue:
		return t.err()
	case error:
		return t
	}
	return nil
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

func binaryOp(name string) func(c *icall) (any, error) {
	return func(c *icall) (any, error) {
		l, err := c.input()
		if err != nil {
			return nil, propagated{c.in}
		}
		if len(c.params.Args) != 1 {
			return nil, errorf("invalid operator call")
		}
		r := c.arg(0)
		if u, ok := firstUndefined(l, r); ok {
			return nil, u.err()
		}
		return applyOp(c.st, name, l, r)
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
