package console

import (
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	cases := []struct {
		name           string
		a, b           string
		want           []string // op+text of each line
		added, removed int
	}{
		{"identical", "a\nb\n", "a\nb\n", nil, 0, 0},
		{"changed line", "a\nb\nc\n", "a\nB\nc\n", []string{"=a", "-b", "+B", "=c"}, 1, 1},
		{"added at end", "a\n", "a\nb\n", []string{"=a", "+b"}, 1, 0},
		{"from empty", "", "x\n", []string{"+x"}, 1, 0},
		{"to empty", "x\ny", "", []string{"-x", "-y"}, 0, 2},
		{"far apart changes keep a gap", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "X\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nY\n",
			[]string{"-1", "+X", "=2", "=3", "=4", "…", "=9", "=10", "=11", "-12", "+Y"}, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines, added, removed := lineDiff(tc.a, tc.b)
			var got []string
			for _, l := range lines {
				got = append(got, l.Op+l.Text)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || added != tc.added || removed != tc.removed {
				t.Errorf("got %q (+%d −%d), want %q (+%d −%d)", got, added, removed, tc.want, tc.added, tc.removed)
			}
		})
	}
	// Line numbers follow each side.
	lines, _, _ := lineDiff("a\nb\nc\n", "a\nx\ny\nc\n")
	last := lines[len(lines)-1]
	if last.Op != "=" || last.Old != 3 || last.New != 4 {
		t.Errorf("last line %+v", last)
	}
}
