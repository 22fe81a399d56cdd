package gonja

import (
	"math"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// functionFn is the signature gonja calls with positional and named args.
type functionFn func(e *exec.Evaluator, params *exec.VarArgs) *exec.Value

// functions are Tera's deterministic global functions. now(), get_random()
// and get_env() are deliberately absent: templates must render the same way
// every time and must not read the broker's environment.
var functions = map[string]functionFn{
	"range": fnRange,
	"throw": fnThrow,
}

// fnRange is Tera's range(end, start=0, step_by=1); positionally
// range(end), range(start, end) or range(start, end, step_by) as in Jinja.
func fnRange(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	st := stateFrom(e.Environment.Context)
	out, err := rangeValues(st, params)
	if err != nil {
		return st.fail("function", "range", err)
	}
	return exec.AsValue(out)
}

func rangeValues(st *renderState, params *exec.VarArgs) ([]any, error) {
	if err := st.check(); err != nil {
		return nil, err
	}
	var names []string
	switch len(params.Args) {
	case 0, 1:
		names = []string{"end"}
	case 2:
		names = []string{"start", "end"}
	default:
		names = []string{"start", "end", "step_by"}
	}
	a, err := bindArgs("Function", "range", names, []string{"start", "end", "step_by"}, params)
	if err != nil {
		return nil, err
	}
	if _, ok := a.m["end"]; !ok {
		return nil, errorf("Function `range` was called without a `end` argument")
	}
	end, err := a.int("end", 0)
	if err != nil {
		return nil, err
	}
	start, err := a.int("start", 0)
	if err != nil {
		return nil, err
	}
	stepBy, err := a.int("step_by", 1)
	if err != nil {
		return nil, err
	}
	if stepBy == 0 {
		return nil, errorf("Function `range` was called with a `step_by` argument of 0")
	}
	if start > end && stepBy > 0 {
		return nil, errorf("Function `range` was called with a `start` argument greater than the `end` one")
	}
	// Count in floating point first so that extreme bounds cannot overflow.
	nf := math.Ceil((float64(end) - float64(start)) / float64(stepBy))
	if nf < 0 || math.IsNaN(nf) {
		nf = 0
	}
	if nf > float64(st.limitsLoop()) {
		return nil, st.checkLen(int(math.Min(nf, 1<<40)))
	}
	n := int64(nf)
	out := make([]any, 0, n)
	for i, v := int64(0), start; i < n; i, v = i+1, v+stepBy {
		out = append(out, v)
	}
	return out, nil
}

// fnThrow is Tera's throw(message): fail the render with message.
func fnThrow(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	st := stateFrom(e.Environment.Context)
	if err := st.check(); err != nil {
		return st.fail("function", "throw", err)
	}
	fail := func(err error) *exec.Value { return st.fail("function", "throw", err) }
	a, err := bindArgs("Function", "throw", []string{"message"}, []string{"message"}, params)
	if err != nil {
		return fail(err)
	}
	msg, err := a.str("message", "")
	if err != nil {
		return fail(err)
	}
	if _, ok := a.m["message"]; !ok {
		return fail(errorf("Function `throw` was called without a `message` argument"))
	}
	return fail(errorf("%s", msg))
}

func (s *renderState) limitsLoop() int {
	if s == nil {
		return 10_000
	}
	return s.limits.MaxLoopIterations
}
