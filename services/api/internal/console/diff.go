package console

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// diffLine is one line of a unified line diff.
type diffLine struct {
	Op       string // "=", "+", "-" or "…" (unchanged lines skipped)
	Old, New int    // 1-based line numbers; 0 when absent
	Text     string
}

// diffContext is how many unchanged lines surround a change.
const diffContext = 3

// lineDiff compares two YAML documents line by line (Python difflib's
// matching, which keeps moved blocks readable) and returns the changed
// lines with some context, plus how many lines were added and removed.
func lineDiff(a, b string) (lines []diffLine, added, removed int) {
	al, bl := splitLines(a), splitLines(b)
	m := difflib.NewMatcher(al, bl)
	for _, group := range m.GetGroupedOpCodes(diffContext) {
		if len(lines) > 0 {
			lines = append(lines, diffLine{Op: "…"})
		}
		for _, op := range group {
			switch op.Tag {
			case 'e':
				for i := op.I1; i < op.I2; i++ {
					lines = append(lines, diffLine{Op: "=", Old: i + 1, New: op.J1 + (i - op.I1) + 1, Text: al[i]})
				}
			case 'd', 'r':
				for i := op.I1; i < op.I2; i++ {
					lines = append(lines, diffLine{Op: "-", Old: i + 1, Text: al[i]})
					removed++
				}
				if op.Tag == 'd' {
					continue
				}
				fallthrough
			case 'i':
				for j := op.J1; j < op.J2; j++ {
					lines = append(lines, diffLine{Op: "+", New: j + 1, Text: bl[j]})
					added++
				}
			}
		}
	}
	return lines, added, removed
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
