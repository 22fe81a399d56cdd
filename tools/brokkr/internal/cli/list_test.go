package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

type item struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

func listOf(t *testing.T, items ...item) list[item] {
	t.Helper()
	var l list[item]
	for _, it := range items {
		raw, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		// The raw form carries a field the typed form drops: structured
		// output must print what the broker sent.
		raw = append(raw[:len(raw)-1], []byte(`,"extra":true}`)...)
		l.items, l.raw = append(l.items, it), append(l.raw, raw)
	}
	return l
}

func TestListRender(t *testing.T) {
	a, b := item{uuid.New(), "alpha"}, item{uuid.New(), "beta"}
	row := func(it item, wide bool) []string {
		if wide {
			return []string{it.Name, it.ID.String()}
		}
		return []string{it.Name}
	}
	for _, tc := range []struct {
		out       outputFlag
		want, not []string
	}{
		{out: "table", want: []string{"NAME", "alpha", "beta"}, not: []string{"ID", a.ID.String()}},
		{out: "wide", want: []string{"NAME", "ID", "alpha", a.ID.String(), b.ID.String()}},
		{out: "json", want: []string{`"extra": true`, `"name": "beta"`}, not: []string{"NAME"}},
	} {
		var buf bytes.Buffer
		app := &App{Out: &buf}
		if err := listOf(t, a, b).render(app, tc.out, []string{"NAME"}, []string{"ID"}, row); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("-o %s: output lacks %q:\n%s", tc.out, w, buf.String())
			}
		}
		for _, n := range tc.not {
			if strings.Contains(buf.String(), n) {
				t.Errorf("-o %s: output has %q:\n%s", tc.out, n, buf.String())
			}
		}
	}
}

func TestWithLabels(t *testing.T) {
	a, b := item{uuid.New(), "alpha"}, item{uuid.New(), "beta"}
	labels := map[uuid.UUID][]string{a.ID: {"env:prod", "tier:web"}, b.ID: {"env:dev"}}
	fetches := 0
	fetch := func(id uuid.UUID) ([]string, error) { fetches++; return labels[id], nil }
	id := func(it item) uuid.UUID { return it.ID }

	l, got, err := withLabels(listOf(t, a, b), getFlags{out: "table"}, id, fetch)
	if err != nil || len(l.items) != 2 || len(got) != 0 || fetches != 0 {
		t.Fatalf("no -l, no wide: %d items, labels %v, %d fetches, err %v; want all items and no fetch", len(l.items), got, fetches, err)
	}

	l, got, err = withLabels(listOf(t, a, b), getFlags{out: "table", labels: []string{"env:prod"}}, id, fetch)
	if err != nil || len(l.items) != 1 || l.items[0] != a || len(l.raw) != 1 {
		t.Fatalf("-l env:prod: items %v, err %v; want alpha alone (typed and raw)", l.items, err)
	}
	if strings.Join(got[a.ID], ",") != "env:prod,tier:web" {
		t.Fatalf("labels of alpha = %v", got[a.ID])
	}

	l, _, err = withLabels(listOf(t, a, b), getFlags{out: "wide"}, id, fetch)
	if err != nil || len(l.items) != 2 {
		t.Fatalf("-o wide without -l keeps every item: %v, %v", l.items, err)
	}

	boom := errors.New("boom")
	if _, _, err := withLabels(listOf(t, a), getFlags{out: "wide"}, id, func(uuid.UUID) ([]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("fetch error: got %v", err)
	}
}
