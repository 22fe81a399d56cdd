package gonja

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

func TestExp(t *testing.T) {
	cfg := config.New()
	cfg.StrictUndefined = true
	cfg.KeepTrailingNewline = true
	env := &exec.Environment{Context: exec.EmptyContext(), Filters: builtins.Filters, Tests: builtins.Tests, ControlStructures: builtins.ControlStructures, Methods: builtins.Methods}
	for _, src := range []string{"Hello, {{ name !", "{% if true %} hello", "a\n  {{ x | foo(a=1) }}\n{% for %}", "{{ a.b[c].d.0 }}", "{{ not not x }}", "{{ x is not defined }}", "{{ x not in y }}", "{{ `abc` }}", "{{ f(a=1) }}", "{{ a.b() }}", "line1\n{{ (1 }}"} {
		l := loaders.MustNewMemoryLoader(map[string]string{"/t": src})
		tpl, err := exec.NewTemplate("/t", cfg, l, env)
		var se *parser.SyntaxError
		if errors.As(err, &se) {
			fmt.Printf("%q: SYNTAX %+v\n", src, *se)
		} else if err != nil {
			fmt.Printf("%q: ERR %v\n", src, err)
		} else {
			for _, n := range tpl.Root().Nodes {
				fmt.Printf("%q: %T %s\n", src, n, n)
			}
		}
		st := tokens.LexAll(src, cfg)
		for !st.End() {
			tk := st.Current()
			fmt.Printf("   tok %v %q pos=%d l=%d c=%d\n", tk.Type, tk.Val, tk.Pos, tk.Line, tk.Col)
			st.Next()
		}
	}
}
