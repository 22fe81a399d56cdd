package gonja

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/tokens"
)

// preprocess adapts Tera syntax that gonja's lexer does not handle, without
// changing any byte offset (every replacement is one byte for one byte):
//
//   - newlines inside {{ }} and {% %} tags become spaces: Tera allows tags to
//     span lines, gonja's lexer only treats ' ' and '\t' as blanks there;
//   - `backtick` string literals (a Tera form) become "double-quoted" or
//     'single-quoted' strings;
//   - a character that gonja's lexer would silently drop inside a tag (such
//     as '$', '?', ';', '&', '@', '#', '^' or '\\') is reported as a syntax
//     error instead.
//
// Comments, raw blocks and string literals are left untouched.
func preprocess(src string) (string, error) {
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
		return src, nil
	}
	b := []byte(src)
	i := 0
	for i < len(b) {
		j := strings.IndexByte(src[i:], '{')
		if j < 0 {
			break
		}
		i += j
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case '#':
			end := strings.Index(src[i+2:], "#}")
			if end < 0 {
				return string(b), nil // the lexer reports the unclosed comment
			}
			i += 2 + end + 2
		case '{', '%':
			closer := "}}"
			if b[i+1] == '%' {
				closer = "%}"
			}
			start := i + 2
			end, err := scanTag(b, src, start, closer)
			if err != nil {
				return "", err
			}
			if end < 0 {
				return string(b), nil // unterminated: the lexer reports it
			}
			i = end + len(closer)
			if closer == "%}" && tagName(src[start:end]) == "raw" {
				loc := endRawRe.FindStringIndex(src[i:])
				if loc == nil {
					return string(b), nil
				}
				i += loc[0]
			}
		default:
			i++
		}
	}
	return string(b), nil
}

var endRawRe = regexp.MustCompile(`\{%[-+]?\s*endraw`)

func tagName(content string) string {
	content = strings.TrimLeft(content, "-+ \t\n")
	end := strings.IndexFunc(content, func(r rune) bool { return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) })
	if end < 0 {
		return content
	}
	return content[:end]
}

const tagPunctuation = " \t\n+-*/%~|.,:()[]{}=<>!"

// scanTag processes one tag body starting at start and returns the offset of
// its closer, or -1 when the tag is not terminated.
func scanTag(b []byte, src string, start int, closer string) (int, error) {
	depth := 0
	i := start
	for i < len(b) {
		c := b[i]
		if depth == 0 && strings.HasPrefix(src[i:], closer) {
			return i, nil
		}
		switch {
		case c == '"' || c == '\'':
			// gonja: the literal ends at the next unescaped quote.
			k := i + 1
			for k < len(b) && !(b[k] == c && b[k-1] != '\\') {
				k++
			}
			if k >= len(b) {
				return -1, nil
			}
			i = k + 1
			continue
		case c == '`':
			k := strings.IndexByte(src[i+1:], '`')
			if k < 0 {
				return -1, syntaxAtOffset(src, i, "unterminated string literal")
			}
			content := src[i+1 : i+1+k]
			var q byte
			switch {
			case !strings.ContainsAny(content, "\"\\"):
				q = '"'
			case !strings.ContainsAny(content, "'\\"):
				q = '\''
			default:
				return -1, syntaxAtOffset(src, i, "a `backtick` string containing both quote characters or a backslash is not supported")
			}
			b[i], b[i+1+k] = q, q
			i += k + 2
			continue
		case c == '\n':
			b[i] = ' '
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		case c < utf8.RuneSelf:
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(tagPunctuation, c) >= 0) {
				return -1, syntaxAtOffset(src, i, fmt.Sprintf("unexpected character %q", string(c)))
			}
		default:
			r, size := utf8.DecodeRuneInString(src[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return -1, syntaxAtOffset(src, i, fmt.Sprintf("unexpected character %q", string(r)))
			}
			i += size
			continue
		}
		i++
	}
	return -1, nil
}

// offsetError is a syntax error located by byte offset; compile converts it
// into a template.SyntaxError with line and column.
type offsetError struct {
	off int
	msg string
}

func (e *offsetError) Error() string { return e.msg }

func syntaxAtOffset(_ string, off int, msg string) error {
	return &offsetError{off: off, msg: msg}
}

// posMapper maps positions in the preprocessed source (where tags have no
// newlines) back to the original source. Both have the same byte offsets.
type posMapper struct {
	orig, mod         string
	origStarts, modSt []int
}

func newPosMapper(orig, mod string) *posMapper {
	return &posMapper{orig: orig, mod: mod, origStarts: lineStarts(orig), modSt: lineStarts(mod)}
}

func lineStarts(s string) []int {
	starts := []int{0}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset returns the byte offset of (line, byte column) in the preprocessed
// source.
func (m *posMapper) offset(line, col int) (int, bool) {
	if line <= 0 || line > len(m.modSt) {
		return 0, false
	}
	off := m.modSt[line-1]
	if col > 1 {
		off += col - 1
	}
	if off > len(m.mod) {
		off = len(m.mod)
	}
	return off, true
}

// original converts (line, byte column) of the preprocessed source into
// (line, rune column) of the original source.
func (m *posMapper) original(line, col int) (int, int) {
	off, ok := m.offset(line, col)
	if !ok {
		return line, col
	}
	return m.fromOffset(off)
}

// fromOffset converts a byte offset into (line, rune column) of the original
// source.
func (m *posMapper) fromOffset(off int) (int, int) {
	if off < 0 {
		off = 0
	}
	if off > len(m.orig) {
		off = len(m.orig)
	}
	l := lineOf(m.origStarts, off)
	start := m.origStarts[l-1]
	return l, utf8.RuneCountInString(m.orig[start:off]) + 1
}

// at returns the original (line, column) of a token of the preprocessed
// source.
func (m *posMapper) at(tok *tokens.Token) (int, int) {
	if tok == nil {
		return 0, 0
	}
	if tok.Line > 0 {
		return m.original(tok.Line, tok.Col)
	}
	if tok.Pos > 0 || tok.Type != tokens.EOF {
		return m.fromOffset(tok.Pos)
	}
	return 0, 0
}

// originalLine converts a line of the preprocessed source.
func (m *posMapper) originalLine(line int) int {
	if line <= 0 || line > len(m.modSt) {
		return line
	}
	return lineOf(m.origStarts, m.modSt[line-1])
}

func lineOf(starts []int, off int) int {
	lo, hi := 0, len(starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if starts[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1
}
