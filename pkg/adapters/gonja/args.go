package gonja

import (
	"math"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// args are a filter's (or function's) arguments, bound by name. Tera only
// has named arguments (`replace(from="a", to="b")`); Jinja-style positional
// arguments are accepted too and bound to the names in a fixed order
// (`replace("a", "b")`). Unknown named arguments are ignored, as Tera does.
type args struct {
	kind string // "Filter" or "Function"
	name string
	m    map[string]any
}

func bindArgs(kind, name string, positional, known []string, params *exec.VarArgs) (*args, error) {
	a := &args{kind: kind, name: name, m: map[string]any{}}
	if params == nil {
		return a, nil
	}
	if len(params.Args) > len(positional) {
		if len(positional) == 0 {
			return nil, errorf("%s `%s` does not take arguments", kind, name)
		}
		return nil, errorf("%s `%s` takes at most %d positional argument(s), got %d", kind, name, len(positional), len(params.Args))
	}
	for i, v := range params.Args {
		a.m[positional[i]] = native(v)
	}
	for _, v := range params.KwArgs {
		if u, ok := native(v).(undefinedValue); ok {
			return nil, u.err()
		}
	}
	for _, v := range a.m {
		if u, ok := v.(undefinedValue); ok {
			return nil, u.err()
		}
	}
	for k, v := range params.KwArgs {
		isKnown := false
		for _, n := range known {
			if n == k {
				isKnown = true
				break
			}
		}
		if !isKnown {
			continue
		}
		if _, dup := a.m[k]; dup {
			return nil, errorf("%s `%s` received the argument `%s` twice", kind, name, k)
		}
		a.m[k] = native(v)
	}
	return a, nil
}

func (a *args) has(n string) bool { _, ok := a.m[n]; return ok }

func (a *args) typeErr(n string, v any, want string) error {
	return errorf("%s `%s` received an incorrect type for arg `%s`: got `%s` but expected a %s", a.kind, a.name, n, shortJSON(v), want)
}

func (a *args) required(n string) error {
	return errorf("%s `%s` expected an arg called `%s`", a.kind, a.name, n)
}

func (a *args) str(n, def string) (string, error) {
	v, ok := a.m[n]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", a.typeErr(n, v, "String")
	}
	return s, nil
}

func (a *args) strReq(n string) (string, error) {
	if !a.has(n) {
		return "", a.required(n)
	}
	return a.str(n, "")
}

func (a *args) int(n string, def int64) (int64, error) {
	v, ok := a.m[n]
	if !ok {
		return def, nil
	}
	switch t := v.(type) {
	case int64:
		return t, nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<62 {
			return int64(t), nil
		}
	}
	return 0, a.typeErr(n, v, "integer")
}

func (a *args) float(n string, def float64) (float64, error) {
	v, ok := a.m[n]
	if !ok {
		return def, nil
	}
	f, ok := asFloat(v)
	if !ok {
		return 0, a.typeErr(n, v, "number")
	}
	return f, nil
}

func (a *args) bool(n string, def bool) (bool, error) {
	v, ok := a.m[n]
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, a.typeErr(n, v, "bool")
	}
	return b, nil
}
