package gonja

import (
	"context"
	"fmt"
	"testing"
)

func TestExp(t *testing.T) {
	e := New(templateLimitsForExp())
	cases := []struct{ src string; p map[string]any }{
		{"Hello, {{ name }}!", map[string]any{"name": "World"}},
		{"Hello, {{ name }}!", nil},
		{"Name: {{ name | upper }}", map[string]any{"name": "test"}},
		{"host: {{ config.host }}", map[string]any{"config": map[string]any{"host": "localhost"}}},
		{"host: {{ config.port }}", map[string]any{"config": map[string]any{"host": "localhost"}}},
		{"{{ ns | default(value=\"default\") }} {{ r | default(value=1) }}", nil},
		{"{% if x %}yes{% else %}no{% endif %}", nil},
		{"{% if not x %}yes{% else %}no{% endif %}", nil},
		{"{% if x == 1 %}yes{% else %}no{% endif %}", nil},
		{"{{ replicas * 2 }} {{ 7 / 2 }} {{ 6 / 2 }} {{ 1.5 + 1 }} {{ 'a' ~ 1 ~ true }}", map[string]any{"replicas": 3.0}},
		{"{% for k, v in m %}{{ k }}={{ v }};{% endfor %}", map[string]any{"m": map[string]any{"B": "2", "A": "1"}}},
		{"{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ x }} {% endfor %}", map[string]any{"l": []any{"a", "b", "c"}}},
		{"{{ x | replace(from=\"-\", to=\"_\") }} {{ x | replace(\"-\", \"+\") }}", map[string]any{"x": "a-b"}},
		{"{{ l | join(sep=\",\") }} {{ l | join(\"|\") }} {{ l | length }} {{ l | first }} {{ l | last }}", map[string]any{"l": []any{"a", 1.0, true}}},
		{"{{ m | json_encode }} {{ m | tojson }}", map[string]any{"m": map[string]any{"a": 1.0, "b": "<x>"}}},
		{"{{ \"My App\" | slugify }} {{ \"  x \" | trim }} {{ 3.14159 | round(precision=2) }} {{ 3.7 | int }}", nil},
		{"{% set a = 5 %}{{ a + 1 }}", nil},
		{"a\n  {%- if true -%}\n  b\n  {%- endif %}\nc", nil},
		{"{{ x is defined }} {{ y is not defined }} {{ 3 in [1,2,3] }} {{ 'b' in 'abc' }} {{ 4 not in [1] }}", map[string]any{"x": 1.0}},
		{"{{ foo | bar }}", nil},
		{"{{ range(end=3) | join(sep=\",\") }} {% for i in range(3) %}{{ i }}{% endfor %}", nil},
		{"{{ self }}", nil},
		{"{{ l }} {{ m }} {{ n }}", map[string]any{"l": []any{"a", 1.0}, "m": map[string]any{}, "n": nil}},
		{"{{ x | upper }}", map[string]any{"x": 50.0}},
		{"{{ s | indent(width=2) }}|{{ s | indent(prefix=\"> \", first=true) }}", map[string]any{"s": "a\nb\n"}},
		{"{% raw %}{{ x }}{% endraw %}{% raw %}{% endraw %}", nil},
		{"{% filter upper %}abc {{ x }}{% endfilter %}", map[string]any{"x": "d"}},
		{"{% for i in [1,2,3,4] %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", nil},
		{"{% break %}", nil},
		{"{{ x.y.z }}", map[string]any{"x": map[string]any{"y": 1.0}}},
		{"{{ a[k] }} {{ a.0 }} {{ l[1] }}", map[string]any{"a": map[string]any{"q": "Q", "0": "zero"}, "k": "q", "l": []any{"p", "r"}}},
		{"{{ \"x\" | quote }} {{ 5 | quote }} {{ \"hi\" | b64encode }}", nil},
		{"{{ name }}", map[string]any{"name": "<b>&"}},
	}
	for _, c := range cases {
		out, err := e.Render(context.Background(), c.src, c.p)
		fmt.Printf("%q => %q err=%v (%T)\n", c.src, out, err, err)
	}
	for _, s := range []string{"Hello, {{ name !", "{% if true %} hello", "a\n  {{ x | foo(a=1) }}", "{% for %}", "{{ a.b() }}", "{{ (1 }}", "{% include 'x' %}", "line1\nline2 {{ x is frob }}", "{{ f(1) }}", "{{ 'abc }}"} {
		fmt.Printf("validate %q => %v\n", s, e.Validate(context.Background(), s))
	}
}
