package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// outputFlag is -o table|wide|json|yaml.
type outputFlag string

func (o outputFlag) check() error {
	switch o {
	case "", "table", "wide", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, wide, json or yaml", string(o))
}

func (o outputFlag) structured() bool { return o == "json" || o == "yaml" }

// printRaw writes a JSON value (the broker's answer, unchanged in shape) as
// indented JSON or as YAML.
func printRaw(w io.Writer, o outputFlag, raw []byte) error {
	if o == "yaml" {
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printValue marshals v and prints it like printRaw.
func printValue(w io.Writer, o outputFlag, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printRaw(w, o, raw)
}

type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cols ...string) {
	for i, c := range cols {
		cols[i] = strings.ReplaceAll(strings.ReplaceAll(c, "\t", " "), "\n", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// age prints a duration the way kubectl does: 45s, 12m, 3h, 5d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "<none>"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func agePtr(now time.Time, t *time.Time) string {
	if t == nil {
		return "<never>"
	}
	return age(now, *t)
}

// ago is "12s ago", or "<never>".
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "<never>"
	}
	return age(now, *t) + " ago"
}

func str(p *string) string {
	if p == nil || *p == "" {
		return "<none>"
	}
	return *p
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\n", " "))
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func joinOrNone(xs []string) string {
	if len(xs) == 0 {
		return "<none>"
	}
	return strings.Join(xs, ",")
}
