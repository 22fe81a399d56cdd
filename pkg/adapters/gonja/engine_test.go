package gonja_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

type renderCase struct {
	name    string
	src     string
	params  map[string]any
	want    string
	wantErr string // substring of the RenderError message
}

func runCases(t *testing.T, cases []renderCase) {
	t.Helper()
	e := gonja.New(template.Limits{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.Render(context.Background(), tc.src, tc.params)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("got %q, want error containing %q", out, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if out != tc.want {
				t.Errorf("got %q, want %q", out, tc.want)
			}
		})
	}
}

func TestNamedAndPositionalArguments(t *testing.T) {
	p := map[string]any{"s": "a-b-c", "l": []any{"x", "y", "z"}, "n": 3.14159, "text": "line1\nline2"}
	runCases(t, []renderCase{
		{"default named", `{{ missing | default(value="x") }}`, p, "x", ""},
		{"default positional", `{{ missing | default("x") }}`, p, "x", ""},
		{"default keeps value", `{{ s | default(value="x") }}`, p, "a-b-c", ""},
		{"default on null", `{{ nothing | default(value="x") }}`, map[string]any{"nothing": nil}, "x", ""},
		{"default keeps falsy", `{{ e | default(value="x") }}`, map[string]any{"e": ""}, "", ""},
		{"default boolean=true replaces falsy", `{{ e | default(value="x", boolean=true) }}`, map[string]any{"e": ""}, "x", ""},
		{"default needs value", `{{ s | default() }}`, p, "", "The `default` filter requires a `value` argument."},
		{"replace named", `{{ s | replace(from="-", to="+") }}`, p, "a+b+c", ""},
		{"replace positional", `{{ s | replace("-", "") }}`, p, "abc", ""},
		{"replace Jinja names", `{{ s | replace(old="-", new="=") }}`, p, "a=b=c", ""},
		{"default Jinja name", `{{ missing | default(default_value="j") }}`, p, "j", ""},
		{"replace missing arg", `{{ s | replace(from="-") }}`, p, "", "Filter `replace` expected an arg called `to`"},
		{"replace wrong type", `{{ s | replace(from=1, to="x") }}`, p, "", "Filter `replace` received an incorrect type for arg `from`: got `1` but expected a String"},
		{"join named", `{{ l | join(sep=", ") }}`, p, "x, y, z", ""},
		{"join positional", `{{ l | join("/") }}`, p, "x/y/z", ""},
		{"join default sep", `{{ l | join }}`, p, "xyz", ""},
		{"indent width named", `{{ text | indent(width=2) }}`, p, "line1\n  line2", ""},
		{"indent width positional", `{{ text | indent(4) }}`, p, "line1\n    line2", ""},
		{"indent prefix (Tera)", `{{ text | indent(prefix="> ", first=true) }}`, p, "> line1\n> line2", ""},
		{"round precision named", `{{ n | round(precision=2) }}`, p, "3.14", ""},
		{"round positional", `{{ n | round(1) }}`, p, "3.1", ""},
		{"round method", `{{ n | round(method="ceil") }}`, p, "4", ""},
		{"round method and precision", `{{ n | round(method="floor", precision=3) }}`, p, "3.141", ""},
		{"truncate named", `{{ s | truncate(length=3) }}`, p, "a-b…", ""},
		{"truncate end", `{{ s | truncate(length=3, end="...") }}`, p, "a-b...", ""},
		{"split", `{{ s | split(pat="-") | last }}`, p, "c", ""},
		{"slice", `{{ l | slice(start=1) | join(sep=",") }}`, p, "y,z", ""},
		{"slice negative", `{{ l | slice(end=-1) | join(sep=",") }}`, p, "x,y", ""},
		{"nth", `{{ l | nth(n=1) }}`, p, "y", ""},
		{"get", `{{ m | get(key="a") }}-{{ m | get(key="zz", default="d") }}`, map[string]any{"m": map[string]any{"a": 1}}, "1-d", ""},
		{"too many positional", `{{ s | upper(1) }}`, p, "", "Filter `upper` does not take arguments"},
		{"unknown named arguments are ignored (Tera)", `{{ s | upper(foo=1) }}`, p, "A-B-C", ""},
		{"argument given twice", `{{ s | replace("-", "+", from="x") }}`, p, "", "received the argument `from` twice"},
		{"undefined argument", `{{ s | replace(from=nope, to="x") }}`, p, "", "Variable `nope` not found"},
	})
}

func TestFilters(t *testing.T) {
	p := map[string]any{
		"name": "My App", "items": []any{3, 1, 2}, "objs": []any{
			map[string]any{"n": "b", "v": 2, "g": "x"}, map[string]any{"n": "a", "v": 1, "g": "y"}, map[string]any{"n": "c", "v": 3, "g": "x"},
		},
		"m": map[string]any{"b": 2, "a": "<x> & \"q\""}, "num": -4, "f": 2.5, "str": "42", "html": "<p>Hi</p>",
	}
	runCases(t, []renderCase{
		{"upper lower", `{{ name | upper }} {{ name | lower }}`, p, "MY APP my app", ""},
		{"capitalize title", `{{ "hELLO wORLD" | capitalize }}|{{ "hello big world" | title }}`, p, "Hello world|Hello Big World", ""},
		{"slugify", `{{ "Héllo, Wörld! 2024" | slugify }}`, p, "hello-world-2024", ""},
		{"trim family", `[{{ "  a  " | trim_start }}][{{ "  a  " | trim_end }}][{{ "xxaxx" | trim_start_matches(pat="x") }}][{{ "xxaxx" | trim_end_matches(pat="x") }}]`, p, "[a  ][  a][axx][xxa]", ""},
		{"length", `{{ name | length }} {{ items | length }} {{ m | length }} {{ "héllo" | length }}`, p, "6 3 2 5", ""},
		{"count alias", `{{ items | count }}`, p, "3", ""},
		{"first last", `{{ items | first }} {{ items | last }} {{ [] | first }}`, p, "3 2 ", ""},
		{"sort", `{{ items | sort | join(sep=",") }}`, p, "1,2,3", ""},
		{"sort attribute", `{{ objs | sort(attribute="n") | map(attribute="v") | join(sep=",") }}`, p, "1,2,3", ""},
		{"unique", `{{ ["a", "A", "b", "a"] | unique | join(sep=",") }}`, p, "a,b", ""},
		{"reverse", `{{ items | reverse | join(sep=",") }} {{ "abc" | reverse }}`, p, "2,1,3 cba", ""},
		{"filter", `{{ objs | filter(attribute="g", value="x") | map(attribute="n") | join(sep=",") }}`, p, "b,c", ""},
		{"group_by", `{% for k, v in objs | group_by(attribute="g") %}{{ k }}={{ v | length }};{% endfor %}`, p, "x=2;y=1;", ""},
		{"concat", `{{ items | concat(with=4) | join(sep=",") }} {{ items | concat(with=[5, 6]) | length }}`, p, "3,1,2,4 5", ""},
		{"json_encode sorted, no HTML escaping", `{{ m | json_encode }}`, p, `{"a":"<x> & \"q\"","b":2}`, ""},
		{"json_encode pretty", `{{ {"a": [1, 2]} | json_encode(pretty=true) }}`, p, "{\n  \"a\": [\n    1,\n    2\n  ]\n}", ""},
		{"tojson alias", `{{ items | tojson }}`, p, `[3,1,2]`, ""},
		{"json floats keep a fraction", `{{ [2.0, 2.5, 10] | json_encode }}`, p, `[2.0,2.5,10]`, ""},
		{"int float", `{{ str | int + 1 }} {{ "3.9" | int }} {{ "x" | int(default=7) }} {{ "ff" | int(base=16) }} {{ str | float }} {{ f | int }}`, p, "43 3 7 255 42 2", ""},
		{"string as_str", `{{ (num | string) ~ "!" }} {{ items | as_str }}`, p, "-4! [3, 1, 2]", ""},
		{"abs", `{{ num | abs }} {{ -2.5 | abs }}`, p, "4 2.5", ""},
		{"quote squote", `{{ name | quote }} {{ "it's" | squote }} {{ 5 | quote }} {{ "a\"b" | quote }}`, p, `"My App" 'it''s' "5" "a\"b"`, ""},
		{"b64", `{{ name | b64encode }} {{ "TXkgQXBw" | b64decode }}`, p, "TXkgQXBw My App", ""},
		{"escape", `{{ html | escape }} {{ html | escape_xml }}`, p, "&lt;p&gt;Hi&lt;&#x2F;p&gt; &lt;p&gt;Hi&lt;/p&gt;", ""},
		{"no autoescaping", `{{ html }}`, p, "<p>Hi</p>", ""},
		{"safe is a no-op", `{{ html | safe }}`, p, "<p>Hi</p>", ""},
		{"striptags", `{{ html | striptags }}`, p, "Hi", ""},
		{"urlencode", `{{ "a b/c?d=é" | urlencode }} {{ "a b/c" | urlencode_strict }}`, p, "a%20b/c%3Fd%3D%C3%A9 a%20b%2Fc", ""},
		{"wordcount", `{{ "one two  three" | wordcount }}`, p, "3", ""},
		{"pluralize", `{{ 1 | pluralize }}|{{ 2 | pluralize }}|{{ 2 | pluralize(singular="y", plural="ies") }}`, p, "|s|ies", ""},
		{"filesizeformat", `{{ 1000 | filesizeformat }} {{ 1536 | filesizeformat(binary=true) }} {{ 12 | filesizeformat }}`, p, "1 kB 1.5 KiB 12 B", ""},
		{"addslashes", `{{ "I'm \"x\"" | addslashes }}`, p, `I\'m \"x\"`, ""},
		{"linebreaksbr spaceless", `{{ "a\nb" | linebreaksbr }} {{ "<a>  <b>" | spaceless }}`, p, "a<br>b <a><b>", ""},
		{"filter section", `{% filter upper %}hello {{ name }}{% endfilter %}`, p, "HELLO MY APP", ""},
		{"filter on wrong type (Tera)", `{{ items | upper }}`, p, "", "Filter `upper` was called on an incorrect value: got `[3,1,2]` but expected a String"},
		{"length on number", `{{ num | length }}`, p, "", "Filter `length` was used on a value that isn't an array, an object, or a string."},
	})
}

func TestLoopVariables(t *testing.T) {
	p := map[string]any{"xs": []any{"a", "b", "c"}, "m": map[string]any{"z": 1, "a": 2}, "empty": []any{}}
	runCases(t, []renderCase{
		{"loop vars", `{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ x }};{% endfor %}`, p,
			"10truefalse3a;21falsefalse3b;32falsetrue3c;", ""},
		{"revindex", `{% for x in xs %}{{ loop.revindex }}{{ loop.revindex0 }} {% endfor %}`, p, "32 21 10 ", ""},
		{"map loop sorted keys", `{% for k, v in m %}{{ k }}={{ v }} {% endfor %}`, p, "a=2 z=1 ", ""},
		{"for else", `{% for x in empty %}{{ x }}{% else %}none{% endfor %}`, p, "none", ""},
		{"break continue", `{% for x in xs %}{% if loop.first %}{% continue %}{% endif %}{{ x }}{% if x == "b" %}{% break %}{% endif %}{% endfor %}`, p, "b", ""},
		{"nested loops shadow loop", `{% for x in xs %}{% for y in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}`, p, "121|122|123|", ""},
		{"loop over string", `{% for c in "héllo" %}{{ c }}.{% endfor %}`, p, "h.é.l.l.o.", ""},
		{"range named", `{% for i in range(end=3) %}{{ i }}{% endfor %}`, p, "012", ""},
		{"range start step", `{% for i in range(start=2, end=10, step_by=3) %}{{ i }},{% endfor %}`, p, "2,5,8,", ""},
		{"range positional", `{% for i in range(1, 4) %}{{ i }}{% endfor %}`, p, "123", ""},
		{"loop var scoped to the loop", `{% for x in xs %}{% endfor %}{{ x }}`, p, "", "Variable `x` not found"},
		{"set inside loop is local", `{% set n = 0 %}{% for x in xs %}{% set n = n + 1 %}{% endfor %}{{ n }}`, p, "0", ""},
		{"set_global", `{% set_global n = 0 %}{% for x in xs %}{% set_global n = n + 1 %}{% endfor %}{{ n }}`, p, "3", ""},
		{"set inside if is visible after", `{% if true %}{% set y = 5 %}{% endif %}{{ y }}`, p, "5", ""},
		{"key value on a list fails", `{% for k, v in xs %}{% endfor %}`, p, "", "Tried to iterate using key value on variable `xs`, but it isn't an object/map"},
		{"single var on a map fails", `{% for k in m %}{% endfor %}`, p, "", "Tried to iterate using key value on variable `m`, but it is missing a key"},
		{"iterate a number fails", `{% for k in 5 %}{% endfor %}`, p, "", "unsupported type"},
		{"iterate undefined fails", `{% for k in nope %}{% endfor %}`, p, "", "Variable `nope` not found in context while rendering 'template'"},
	})
}

func TestWhitespaceControl(t *testing.T) {
	p := map[string]any{"xs": []any{1, 2}, "on": true}
	runCases(t, []renderCase{
		{"kept exactly as written", "a\n{% if on %}\nb\n{% endif %}\nc\n", p, "a\n\nb\n\nc\n", ""},
		{"trailing newline kept", "x\n", p, "x\n", ""},
		{"left trim", "a\n  {%- if on %}b{% endif %}", p, "ab", ""},
		{"right trim", "{% if on -%}\n   b{% endif %}", p, "b", ""},
		{"both", "items:\n{%- for x in xs %}\n  - {{ x }}\n{%- endfor %}\n", p, "items:\n  - 1\n  - 2\n", ""},
		{"variable trim", "a   {{- 'b' -}}   c", p, "abc", ""},
		{"comment trim", "a  {#- note -#}  b", p, "ab", ""},
		{"raw keeps delimiters", "{% raw %}{{ x }} {% if %}{% endraw %}", p, "{{ x }} {% if %}", ""},
		{"CRLF is normalised to LF", "a\r\nb", p, "a\nb", ""},
	})
}

func TestTeraSemantics(t *testing.T) {
	p := map[string]any{
		"n": 7, "f": 2.5, "s": "abc", "l": []any{1, 2, 3}, "m": map[string]any{"k": "v", "nested": map[string]any{"x": 1}},
		"t": true, "z": 0, "e": "", "null": nil, "idx": 1, "key": "k",
	}
	runCases(t, []renderCase{
		{"arithmetic", `{{ n + 1 }} {{ n - 10 }} {{ n * 2 }} {{ n / 2 }} {{ n % 4 }} {{ f * 2 }} {{ n // 2 }} {{ 2 ** 10 }}`, p, "8 -3 14 3.5 3 5 3 1024", ""},
		{"division gives a float, printed like Rust", `{{ 6 / 2 }} {{ 1 / 3 }}`, p, "3 0.3333333333333333", ""},
		{"integer overflow is an error", `{{ 9223372036854775807 + 1 }}`, p, "", "results in an out of bounds i64"},
		{"modulo by zero", `{{ n % 0 }}`, p, "", "Tried to do a modulo by zero"},
		{"math on a string", `{{ s + 1 }}`, p, "", "Tried to do math with a string: `abc`"},
		{"concat", `{{ s ~ "-" ~ n ~ "-" ~ f ~ "-" ~ t }}`, p, "abc-7-2.5-true", ""},
		{"concat a list fails", `{{ s ~ l }}`, p, "", "Tried to concat a value that is not a string or a number"},
		{"comparisons", `{{ n > 5 }} {{ n >= 7 }} {{ n < 7 }} {{ n <= 6 }} {{ n == 7.0 }} {{ s != "abc" }} {{ "a" < "b" }}`, p, "true true false false true false true", ""},
		{"in", `{{ 2 in l }} {{ "b" in s }} {{ "k" in m }} {{ 9 not in l }}`, p, "true true true true", ""},
		{"logic returns booleans", `{{ t and s }} {{ z or e }} {{ not z }}`, p, "true false true", ""},
		{"truthiness", `{% if e or z or null or [] %}yes{% else %}no{% endif %}`, p, "no", ""},
		{"undefined is falsy in if", `{% if nope %}yes{% elif nope.deeper %}yes{% else %}no{% endif %}`, p, "no", ""},
		{"not undefined is true", `{% if not nope %}yes{% endif %}`, p, "yes", ""},
		{"undefined and", `{% if nope and nope.x %}yes{% else %}no{% endif %}`, p, "no", ""},
		{"defined tests", `{{ s is defined }} {{ nope is defined }} {{ nope is undefined }} {{ m.nested.x is defined }} {{ m.nested.y is not defined }}`, p, "true false true true true", ""},
		{"is tests", `{{ n is odd }} {{ n is even }} {{ n is divisibleby(7) }} {{ s is string }} {{ n is number }} {{ l is iterable }} {{ m is object }} {{ s is starting_with("ab") }} {{ s is ending_with("c") }} {{ l is containing(2) }} {{ s is matching("^a.c$") }}`, p,
			"true false true true true true true true true true true", ""},
		{"comparing undefined is an error", `{% if nope == 1 %}{% endif %}`, p, "", "Variable `nope` not found in context while rendering 'template'"},
		{"dotted and indexed access", `{{ m.k }} {{ m["k"] }} {{ m[key] }} {{ l.0 }} {{ l[2] }} {{ l[idx] }} {{ m.nested.x }}`, p, "v v v 1 3 2 1", ""},
		{"missing nested key names the path", `{{ m.nested.y }}`, p, "", "Variable `m.nested.y` not found in context while rendering 'template'"},
		{"index out of range", `{{ l[5] }}`, p, "", "Variable `l[5]` not found"},
		{"printing", `[{{ null }}] [{{ t }}] [{{ l }}] [{{ m }}] [{{ f }}] [{{ 1e3 }}]`, p, "[] [true] [[1, 2, 3]] [[object]] [2.5] [1000]", ""},
		{"literals", `{{ [1, "a", true] | length }} {{ {"a": 1}.a }}`, p, "3 1", ""},
		{"undefined inside a list literal", `{{ [1, nope] | length }}`, p, "", "Variable `nope` not found"},
		{"throw", `{{ throw(message="boom") }}`, p, "", "boom"},
		{"inline if (Jinja extension)", `{{ "y" if t else "n" }} {{ "y" if nope else "n" }}`, p, "y n", ""},
		{"__tera_context", `{{ __tera_context }}`, map[string]any{"a": 1}, "{\n  \"a\": 1\n}", ""},
		{"param named self", `{{ self }}`, map[string]any{"self": "me"}, "me", ""},
		{"set", `{% set x = n * 2 %}{{ x }}`, p, "14", ""},
		{"set undefined fails", `{% set x = nope %}`, p, "", "Variable `nope` not found"},
	})
}

func TestParamsNormalisation(t *testing.T) {
	var fromJSON map[string]any
	if err := json.Unmarshal([]byte(`{"replicas": 3, "ratio": 0.5, "big": 1e20, "list": [1, 2.5]}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	e := gonja.New(template.Limits{})
	out, err := e.Render(context.Background(), "{{ replicas }} {{ ratio }} {{ big }} {{ list }} {{ replicas * 2 }}", fromJSON)
	if err != nil {
		t.Fatal(err)
	}
	if want := "3 0.5 100000000000000000000 [1, 2.5] 6"; out != want {
		t.Errorf("got %q want %q", out, want)
	}
	type spec struct {
		Name string `json:"name"`
	}
	out, err = e.Render(context.Background(), "{{ s.name }} {{ n }} {{ u }}", map[string]any{"s": spec{Name: "x"}, "n": json.Number("12"), "u": uint8(7)})
	if err != nil || out != "x 12 7" {
		t.Errorf("got %q %v", out, err)
	}
}

func TestErrorsCarryLine(t *testing.T) {
	e := gonja.New(template.Limits{})
	_, err := e.Render(context.Background(), "a: 1\nb: 2\nc: {{ x | upper }}\n", map[string]any{"x": 5})
	var re *template.RenderError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v", err, err)
	}
	if re.Line != 3 {
		t.Errorf("line = %d, want 3", re.Line)
	}
	if re.Msg != "Filter `upper` was called on an incorrect value: got `5` but expected a String" {
		t.Errorf("msg = %q", re.Msg)
	}
}

// gonja's lexer panics on a number, a dot and a three-byte letter; both
// Validate and Render answer with the author's syntax error.
func TestLexerPanicIsASyntaxError(t *testing.T) {
	e := gonja.New(template.Limits{})
	for _, src := range []string{"{{0.탮", "{{ 1.탮 }}", "a\n{% if 0.ẞ %}{% endif %}"} {
		var se *template.SyntaxError
		if err := e.Validate(context.Background(), src); !errors.As(err, &se) {
			t.Errorf("Validate(%q) = %T %v, want a SyntaxError", src, err, err)
		}
		if _, err := e.Render(context.Background(), src, nil); !errors.As(err, &se) {
			t.Errorf("Render(%q) = %T %v, want a SyntaxError", src, err, err)
		}
	}
}

func TestConcurrentRenders(t *testing.T) {
	e := gonja.New(template.Limits{})
	done := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func(i int) {
			out, err := e.Render(context.Background(), nginxDeployment, map[string]any{"name": "n", "replicas": i + 1})
			if err == nil && !strings.Contains(out, "replicas: ") {
				err = errors.New("bad output")
			}
			done <- err
		}(i)
	}
	for i := 0; i < 20; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestPreprocessing(t *testing.T) {
	p := map[string]any{"a": true, "b": 1, "name": "web"}
	runCases(t, []renderCase{
		{"multi-line if", "{% if a and\n      b == 1 %}yes{% endif %}\nline3: {{ name }}", p, "yes\nline3: web", ""},
		{"multi-line output", "{{ name\n   | upper }}", p, "WEB", ""},
		{"multi-line set", "{% set x = [\n  1,\n  2\n] %}{{ x | length }}", p, "2", ""},
		{"backtick strings", "{{ `a\"b` }} {{ `plain` | upper }}", p, `a"b PLAIN`, ""},
		{"dict literal containing }}", `{{ {"a": {"b": 1}}.a.b }}`, p, "1", ""},
		{"braces inside strings", `{{ "}}" ~ '%}' }}`, p, "}}%}", ""},
		{"raw blocks untouched", "{% raw %}{{ $x\n }}{% endraw %}", p, "{{ $x\n }}", ""},
		{"comments untouched", "{# $ ? ; #}ok", p, "ok", ""},
	})
	e := gonja.New(template.Limits{})
	cases := []struct{ src, want string }{
		{"a\n{{ x $ y }}", `line 2, column 6: unexpected character "$"`},
		{"{% if a and\n b %}\n{{ x ; }}", `line 3, column 6: unexpected character ";"`},
		{"{% if a and\n b %}\n{{ x | nope }}{% endif %}", `line 3, column 8: unknown filter "nope"`},
		{"{{ `it's \"x\"` }}", "line 1, column 4: a `backtick` string containing both quote characters or a backslash is not supported"},
		{"é{{ x | nope }}", `line 1, column 9: unknown filter "nope"`},
	}
	for _, tc := range cases {
		if err := e.Validate(context.Background(), tc.src); err == nil || err.Error() != tc.want {
			t.Errorf("Validate(%q) = %v, want %q", tc.src, err, tc.want)
		}
	}
	// Render errors after a multi-line tag report the original line.
	_, err := e.Render(context.Background(), "{% if a and\n b %}\n{% endif %}\n{{ missing }}", p)
	var re *template.RenderError
	if !errors.As(err, &re) || re.Line != 4 {
		t.Errorf("got %v (line %v), want a RenderError on line 4", err, re)
	}
}
