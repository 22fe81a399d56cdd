package gonja

import (
	"math"
	"regexp"
	"strings"
	"unicode"
)

// testerFn implements `x is name(args)`.
type testerFn func(in any, args []any) (bool, error)

// testers are Tera 1.20's testers plus a few Jinja ones. `in` is the target
// of the `x in y` operator (gonja parses it as a test).
var testers = map[string]testerFn{
	"defined":       nil, // handled in filterTest
	"undefined":     nil, // handled in filterTest
	"odd":           testOdd,
	"even":          testEven,
	"string":        func(in any, _ []any) (bool, error) { _, ok := in.(string); return ok, nil },
	"number":        func(in any, _ []any) (bool, error) { _, ok := asFloat(in); return ok, nil },
	"iterable":      func(in any, _ []any) (bool, error) { return isIterable(in), nil },
	"object":        func(in any, _ []any) (bool, error) { _, ok := in.(map[string]any); return ok, nil },
	"mapping":       func(in any, _ []any) (bool, error) { _, ok := in.(map[string]any); return ok, nil },
	"sequence":      func(in any, _ []any) (bool, error) { _, ok := in.([]any); return ok, nil },
	"boolean":       func(in any, _ []any) (bool, error) { _, ok := in.(bool); return ok, nil },
	"integer":       func(in any, _ []any) (bool, error) { _, ok := in.(int64); return ok, nil },
	"float":         func(in any, _ []any) (bool, error) { _, ok := in.(float64); return ok, nil },
	"none":          func(in any, _ []any) (bool, error) { return in == nil, nil },
	"true":          func(in any, _ []any) (bool, error) { b, ok := in.(bool); return ok && b, nil },
	"false":         func(in any, _ []any) (bool, error) { b, ok := in.(bool); return ok && !b, nil },
	"lower":         testCase(unicode.IsUpper),
	"upper":         testCase(unicode.IsLower),
	"divisibleby":   testDivisibleBy,
	"starting_with": testStringArg("starting_with", strings.HasPrefix),
	"ending_with":   testStringArg("ending_with", strings.HasSuffix),
	"containing":    testContaining,
	"matching":      testMatching,
	"in":            testIn,
}

func isIterable(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

func intOf(v any) (int64, bool) {
	switch t := v.(type) {
	case int64:
		return t, true
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<63 {
			return int64(t), true
		}
	}
	return 0, false
}

func testOdd(in any, _ []any) (bool, error) {
	n, ok := intOf(in)
	if !ok {
		return false, errorf("Tester `odd` was called on a variable that isn't a number")
	}
	return n%2 != 0, nil
}

func testEven(in any, _ []any) (bool, error) {
	n, ok := intOf(in)
	if !ok {
		return false, errorf("Tester `even` was called on a variable that isn't a number")
	}
	return n%2 == 0, nil
}

// testCase returns a tester that is true when the string contains no rune
// for which bad is true (lower: no uppercase letter; upper: no lowercase).
func testCase(bad func(rune) bool) testerFn {
	return func(in any, _ []any) (bool, error) {
		s, ok := in.(string)
		if !ok {
			return false, nil
		}
		for _, r := range s {
			if bad(r) {
				return false, nil
			}
		}
		return true, nil
	}
}

func testDivisibleBy(in any, args []any) (bool, error) {
	if len(args) != 1 {
		return false, errorf("Tester `divisibleby` was called with %d arguments, expected 1", len(args))
	}
	n, ok := intOf(in)
	if !ok {
		return false, errorf("Tester `divisibleby` was called on a variable that isn't a number")
	}
	d, ok := intOf(args[0])
	if !ok {
		return false, errorf("Tester `divisibleby` was called with an argument that isn't a number")
	}
	if d == 0 {
		return false, nil
	}
	return n%d == 0, nil
}

func testStringArg(name string, fn func(s, p string) bool) testerFn {
	return func(in any, args []any) (bool, error) {
		if len(args) != 1 {
			return false, errorf("Tester `%s` was called with %d arguments, expected 1", name, len(args))
		}
		s, ok := in.(string)
		if !ok {
			return false, errorf("Tester `%s` was called on a variable that isn't a string", name)
		}
		p, ok := args[0].(string)
		if !ok {
			return false, errorf("Tester `%s` was called with an argument that isn't a string", name)
		}
		return fn(s, p), nil
	}
}

func testContaining(in any, args []any) (bool, error) {
	if len(args) != 1 {
		return false, errorf("Tester `containing` was called with %d arguments, expected 1", len(args))
	}
	switch c := in.(type) {
	case string:
		s, ok := args[0].(string)
		if !ok {
			return false, errorf("Tester `containing` can only check a string for a string")
		}
		return strings.Contains(c, s), nil
	case []any, map[string]any:
		return containsValue(c, args[0])
	}
	return false, errorf("Tester `containing` can only be used on string, array or map")
}

func testMatching(in any, args []any) (bool, error) {
	if len(args) != 1 {
		return false, errorf("Tester `matching` was called with %d arguments, expected 1", len(args))
	}
	s, ok := in.(string)
	if !ok {
		return false, errorf("Tester `matching` was called on a variable that isn't a string")
	}
	p, ok := args[0].(string)
	if !ok {
		return false, errorf("Tester `matching` was called with an argument that isn't a string")
	}
	if len(p) > 4096 {
		return false, errorf("Tester `matching`: regular expression too long")
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return false, errorf("Tester `matching`: invalid regular expression: %v", err)
	}
	return re.MatchString(s), nil
}

func testIn(in any, args []any) (bool, error) {
	if len(args) != 1 {
		return false, errorf("`in` needs a right-hand side")
	}
	return containsValue(args[0], in)
}

// opTest dispatches `x is name(args)`: Args = [name, arg...]. `defined` and
// `undefined` look at an undefined input; every other tester fails on it.
func opTest(c *icall) (any, error) {
	if len(c.params.Args) == 0 {
		return nil, errorf("invalid test")
	}
	name := c.params.Args[0].String()
	in, err := c.input()
	if err != nil {
		return nil, propagated{c.in}
	}
	_, undefined := in.(undefinedValue)
	switch name {
	case "defined":
		return !undefined, nil
	case "undefined":
		return undefined, nil
	}
	if undefined {
		return nil, in.(undefinedValue).err()
	}
	fn := testers[name]
	if fn == nil {
		return nil, errorf("Tester `%s` not found", name)
	}
	args := make([]any, 0, len(c.params.Args)-1)
	for i := 1; i < len(c.params.Args); i++ {
		a := c.arg(i)
		if u, ok := a.(undefinedValue); ok {
			return nil, u.err()
		}
		args = append(args, a)
	}
	return fn(in, args)
}
