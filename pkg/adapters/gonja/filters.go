package gonja

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
	"golang.org/x/text/unicode/norm"
)

// teraFilter describes one user-visible filter.
type teraFilter struct {
	// pos lists the argument names in positional order; they are also the
	// accepted named arguments unless names is set.
	pos   []string
	names []string
	fn    func(c *fcall) (any, error)
	// undefinedOK lets the filter see an undefined input (default).
	undefinedOK bool
}

// fcall is one invocation.
type fcall struct {
	name string
	st   *renderState
	in   any
	a    *args
}

func (c *fcall) wrongValue(want string) error {
	return errorf("Filter `%s` was called on an incorrect value: got `%s` but expected a %s", c.name, shortJSON(c.in), want)
}

// A filter that works on one kind of input is declared with onString,
// onArray or onNumber: the wrapper refuses any other input with Tera's
// message before the filter reads its arguments.

func onString(fn func(c *fcall, s string) (any, error)) func(c *fcall) (any, error) {
	return func(c *fcall) (any, error) {
		s, ok := c.in.(string)
		if !ok {
			return nil, c.wrongValue("String")
		}
		return fn(c, s)
	}
}

func onArray(fn func(c *fcall, a []any) (any, error)) func(c *fcall) (any, error) {
	return func(c *fcall) (any, error) {
		a, ok := c.in.([]any)
		if !ok {
			return nil, c.wrongValue("Array")
		}
		return fn(c, a)
	}
}

func onNumber(fn func(c *fcall, n float64) (any, error)) func(c *fcall) (any, error) {
	return func(c *fcall) (any, error) {
		n, ok := asFloat(c.in)
		if !ok {
			return nil, c.wrongValue("Number")
		}
		return fn(c, n)
	}
}

// onScalar is for the lenient extra filters (quote, b64encode): any scalar
// input is rendered to a string first.
func onScalar(fn func(c *fcall, s string) (any, error)) func(c *fcall) (any, error) {
	return func(c *fcall) (any, error) {
		switch c.in.(type) {
		case []any, map[string]any:
			return nil, c.wrongValue("String")
		}
		s, err := renderString(c.in, c.st.maxBytes())
		if err != nil {
			return nil, err
		}
		return fn(c, s)
	}
}

// out checks the size of a produced string.
func (c *fcall) out(s string) (any, error) {
	if err := c.st.checkSize(len(s)); err != nil {
		return nil, err
	}
	return s, nil
}

func strFilter(fn func(string) string) teraFilter {
	return teraFilter{fn: onString(func(c *fcall, s string) (any, error) {
		return c.out(fn(s))
	})}
}

// teraFilters is the filter library: Tera 1.20's built-ins (except date,
// which needs a time-zone database and strftime) plus a few Jinja/Helm-style
// extras Brokkr users reach for (tojson, string, quote, squote, b64encode,
// b64decode, count).
var teraFilters = map[string]teraFilter{
	// strings
	"upper":              strFilter(strings.ToUpper),
	"lower":              strFilter(strings.ToLower),
	"trim":               strFilter(strings.TrimSpace),
	"trim_start":         strFilter(func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) }),
	"trim_end":           strFilter(func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) }),
	"trim_start_matches": {pos: []string{"pat"}, fn: trimMatches(true)},
	"trim_end_matches":   {pos: []string{"pat"}, fn: trimMatches(false)},
	"truncate":           {pos: []string{"length", "end"}, fn: onString(fTruncate)},
	"wordcount": {fn: onString(func(c *fcall, s string) (any, error) {
		return int64(len(strings.Fields(s))), nil
	})},
	"replace":          {pos: []string{"from", "to"}, names: []string{"from", "to", "old", "new"}, fn: onString(fReplace)},
	"capitalize":       strFilter(capitalize),
	"title":            strFilter(title),
	"striptags":        strFilter(func(s string) string { return stripTagsRe.ReplaceAllString(s, "") }),
	"linebreaksbr":     strFilter(func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "<br>"), "\n", "<br>") }),
	"spaceless":        strFilter(func(s string) string { return spacelessRe.ReplaceAllString(s, "><") }),
	"urlencode":        strFilter(func(s string) string { return percentEncode(s, false) }),
	"urlencode_strict": strFilter(func(s string) string { return percentEncode(s, true) }),
	"escape":           strFilter(escapeHTML),
	"escape_xml":       strFilter(escapeXML),
	"safe":             {fn: func(c *fcall) (any, error) { return c.in, nil }},
	"slugify":          strFilter(slugify),
	"addslashes": strFilter(func(s string) string {
		return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(s)
	}),
	"split":  {pos: []string{"pat"}, fn: onString(fSplit)},
	"int":    {pos: []string{"default", "base"}, fn: fInt},
	"float":  {pos: []string{"default"}, fn: fFloat},
	"indent": {pos: []string{"width", "first", "blank"}, names: []string{"width", "prefix", "first", "blank"}, fn: onString(fIndent)},

	// arrays
	"first":    {fn: fFirst(true)},
	"last":     {fn: fFirst(false)},
	"nth":      {pos: []string{"n"}, fn: onArray(fNth)},
	"join":     {pos: []string{"sep"}, names: []string{"sep", "d"}, fn: onArray(fJoin)},
	"sort":     {pos: []string{"attribute"}, fn: onArray(fSort)},
	"unique":   {pos: []string{"attribute", "case_sensitive"}, fn: onArray(fUnique)},
	"slice":    {pos: []string{"start", "end"}, fn: onArray(fSlice)},
	"group_by": {pos: []string{"attribute"}, fn: onArray(fGroupBy)},
	"filter":   {pos: []string{"attribute", "value"}, fn: onArray(fFilter)},
	"map":      {pos: []string{"attribute"}, fn: onArray(fMap)},
	"concat":   {pos: []string{"with"}, fn: onArray(fConcat)},

	// numbers
	"pluralize":      {pos: []string{"singular", "plural"}, fn: onNumber(fPluralize)},
	"round":          {pos: []string{"precision", "method"}, fn: onNumber(fRound)},
	"filesizeformat": {pos: []string{"binary"}, fn: onNumber(fFileSize)},
	"abs":            {fn: fAbs},

	// common
	"length":      {fn: fLength},
	"count":       {fn: fLength},
	"reverse":     {fn: fReverse},
	"json_encode": {pos: []string{"pretty"}, fn: fJSON},
	"tojson":      {pos: []string{"pretty"}, names: []string{"pretty", "indent"}, fn: fJSON},
	"as_str":      {fn: fAsStr},
	"string":      {fn: fAsStr},
	"default":     {pos: []string{"value", "boolean"}, names: []string{"value", "boolean", "default_value"}, fn: fDefault, undefinedOK: true},
	"get":         {pos: []string{"key", "default"}, fn: fGet},

	// extras
	"quote": {fn: onScalar(func(c *fcall, s string) (any, error) {
		return c.out(strconv.Quote(s))
	})},
	"squote": {fn: onScalar(func(c *fcall, s string) (any, error) {
		return c.out("'" + strings.ReplaceAll(s, "'", "''") + "'")
	})},
	"b64encode": {fn: onScalar(func(c *fcall, s string) (any, error) {
		if err := c.st.checkSize(base64.StdEncoding.EncodedLen(len(s))); err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	})},
	"b64decode": {fn: onString(func(c *fcall, s string) (any, error) {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil {
			return nil, errorf("Filter `b64decode`: invalid base64: %v", err)
		}
		return c.out(string(b))
	})},
}

// filterFunctions returns the gonja filter set: our Tera filters and the
// internal ones.
func filterFunctions() map[string]exec.FilterFunction {
	m := internalFilters()
	for name, f := range teraFilters {
		m[name] = wrapFilter(name, f)
	}
	return m
}

func wrapFilter(name string, f teraFilter) exec.FilterFunction {
	known := f.names
	if known == nil {
		known = f.pos
	}
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		st := stateFrom(e.Environment.Context)
		if err := st.check(); err != nil {
			return st.fail("filter", name, err)
		}
		if in.IsError() {
			return in
		}
		input := native(in)
		if u, ok := input.(undefinedValue); ok && !f.undefinedOK {
			return st.fail("filter", name, u.err())
		}
		a, err := bindArgs("Filter", name, f.pos, known, params)
		if err != nil {
			return st.fail("filter", name, err)
		}
		out, err := f.fn(&fcall{name: name, st: st, in: input, a: a})
		if err != nil {
			return st.fail("filter", name, err)
		}
		return exec.AsValue(out)
	}
}

// ---------------------------------------------------------------------------
// implementations

var (
	stripTagsRe = regexp.MustCompile(`(?s)(<!--.*?-->|<[^>]*>)`)
	spacelessRe = regexp.MustCompile(`>\s+<`)
	wordsRe     = regexp.MustCompile(`[\p{L}\p{N}_']+`)
)

func trimMatches(start bool) func(c *fcall) (any, error) {
	return onString(func(c *fcall, s string) (any, error) {
		pat, err := c.a.strReq("pat")
		if err != nil {
			return nil, err
		}
		pat = strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(pat)
		if pat == "" {
			return s, nil
		}
		if start {
			for strings.HasPrefix(s, pat) {
				s = s[len(pat):]
			}
		} else {
			for strings.HasSuffix(s, pat) {
				s = s[:len(s)-len(pat)]
			}
		}
		return s, nil
	})
}

func fTruncate(c *fcall, s string) (any, error) {
	length, err := c.a.int("length", 255)
	if err != nil {
		return nil, err
	}
	end, err := c.a.str("end", "…")
	if err != nil {
		return nil, err
	}
	if length < 0 {
		return nil, c.a.typeErr("length", length, "usize")
	}
	if int64(utf8.RuneCountInString(s)) <= length {
		return s, nil
	}
	runes := []rune(s)
	return c.out(string(runes[:length]) + end)
}

func fReplace(c *fcall, s string) (any, error) {
	// Jinja's names old/new are accepted as aliases of Tera's from/to.
	for alias, name := range map[string]string{"old": "from", "new": "to"} {
		if v, ok := c.a.m[alias]; ok && !c.a.has(name) {
			c.a.m[name] = v
		}
	}
	from, err := c.a.strReq("from")
	if err != nil {
		return nil, err
	}
	to, err := c.a.strReq("to")
	if err != nil {
		return nil, err
	}
	// Estimate the result size before building it.
	n := strings.Count(s, from)
	if from == "" {
		n = utf8.RuneCountInString(s) + 1
	}
	if err := c.st.checkSize(len(s) + n*(len(to)-len(from))); err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s, from, to), nil
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return ""
	}
	return strings.ToUpper(string(r)) + strings.ToLower(s[size:])
}

func title(s string) string {
	return wordsRe.ReplaceAllStringFunc(s, capitalize)
}

func percentEncode(s string, strict bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		keep := ch < 0x80 && (ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9')
		if !strict && !keep && ch >= 0x20 && ch < 0x7f && !strings.ContainsRune(" \"<>`#?{}:;=@[\\]^|!$&'()*+,", rune(ch)) {
			keep = true
		}
		if keep {
			b.WriteByte(ch)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;", "/", "&#x2F;").Replace(s)
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// slugify approximates the slug crate: transliterate accented letters to
// ASCII, lowercase, and join the alphanumeric runs with '-'.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(unicode.ToLower(r))
		default:
			dash = true
		}
	}
	return b.String()
}

func fSplit(c *fcall, s string) (any, error) {
	pat, err := c.a.strReq("pat")
	if err != nil {
		return nil, err
	}
	pat = strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(pat)
	var n int
	if pat == "" {
		n = utf8.RuneCountInString(s) + 2
	} else {
		n = strings.Count(s, pat) + 1
	}
	if err := c.st.checkLen(n); err != nil {
		return nil, err
	}
	var parts []string
	if pat == "" {
		// Rust's str::split("") yields "", every char, "".
		parts = append(parts, "")
		for _, r := range s {
			parts = append(parts, string(r))
		}
		parts = append(parts, "")
	} else {
		parts = strings.Split(s, pat)
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func fInt(c *fcall) (any, error) {
	def, err := c.a.int("default", 0)
	if err != nil {
		return nil, err
	}
	base, err := c.a.int("base", 10)
	if err != nil {
		return nil, err
	}
	if base < 2 || base > 36 {
		return nil, errorf("Filter `int` received an invalid base %d", base)
	}
	switch t := c.in.(type) {
	case string:
		s := strings.TrimSpace(t)
		switch base {
		case 2:
			s = strings.TrimPrefix(s, "0b")
		case 8:
			s = strings.TrimPrefix(s, "0o")
		case 16:
			s = strings.TrimPrefix(s, "0x")
		}
		if v, err := strconv.ParseInt(s, int(base), 64); err == nil {
			return v, nil
		}
		if strings.Contains(s, ".") {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return floatToInt(f), nil
			}
		}
		return def, nil
	case int64:
		return t, nil
	case float64:
		return floatToInt(t), nil
	}
	return nil, errorf("Filter `int` received an unexpected type")
}

// floatToInt truncates like Rust's `as i64` (saturating, NaN → 0).
func floatToInt(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func fFloat(c *fcall) (any, error) {
	def, err := c.a.float("default", 0)
	if err != nil {
		return nil, err
	}
	switch t := c.in.(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil {
			return def, nil
		}
		return f, nil
	case int64:
		return float64(t), nil
	case float64:
		return t, nil
	}
	return nil, errorf("Filter `float` received an unexpected type")
}

// fIndent is Tera's indent(prefix="    ", first=false, blank=false); Jinja's
// width (a number of spaces or a string) is accepted as well.
func fIndent(c *fcall, s string) (any, error) {
	prefix := "    "
	for _, n := range []string{"width", "prefix"} {
		v, ok := c.a.m[n]
		if !ok {
			continue
		}
		switch t := v.(type) {
		case string:
			prefix = t
		case int64:
			if t < 0 || t > 1024 {
				return nil, errorf("Filter `indent`: width %d is out of range", t)
			}
			prefix = strings.Repeat(" ", int(t))
		default:
			return nil, c.a.typeErr(n, v, "String or integer")
		}
	}
	first, err := c.a.bool("first", false)
	if err != nil {
		return nil, err
	}
	blank, err := c.a.bool("blank", false)
	if err != nil {
		return nil, err
	}
	lines := rustLines(s)
	if err := c.st.checkSize(len(s) + len(prefix)*(len(lines)+1)); err != nil {
		return nil, err
	}
	var b strings.Builder
	for i, line := range lines {
		if i == 0 {
			if first {
				b.WriteString(prefix)
			}
		} else {
			b.WriteByte('\n')
			if blank || strings.TrimLeftFunc(line, unicode.IsSpace) != "" {
				b.WriteString(prefix)
			}
		}
		b.WriteString(line)
	}
	return b.String(), nil
}

// rustLines is str::lines: split on \n, drop a trailing \r, no final empty
// line.
func rustLines(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(p, "\r")
	}
	return parts
}

func fFirst(first bool) func(c *fcall) (any, error) {
	return onArray(func(c *fcall, a []any) (any, error) {
		if len(a) == 0 {
			return nil, nil
		}
		if first {
			return a[0], nil
		}
		return a[len(a)-1], nil
	})
}

func fNth(c *fcall, a []any) (any, error) {
	if !c.a.has("n") {
		return nil, c.a.required("n")
	}
	n, err := c.a.int("n", 0)
	if err != nil {
		return nil, err
	}
	if n < 0 || n >= int64(len(a)) {
		return nil, nil
	}
	return a[n], nil
}

func fJoin(c *fcall, a []any) (any, error) {
	sep, err := c.a.str("sep", "")
	if err != nil {
		return nil, err
	}
	if c.a.has("d") && !c.a.has("sep") {
		if sep, err = c.a.str("d", ""); err != nil {
			return nil, err
		}
	}
	w := &sizeWriter{max: c.st.maxBytes()}
	for i, v := range a {
		if err := c.st.check(); err != nil {
			return nil, err
		}
		if i > 0 {
			if err := w.add(sep); err != nil {
				return nil, err
			}
		}
		if err := renderInto(w, v, 0); err != nil {
			return nil, err
		}
	}
	return w.String(), nil
}

// attr follows a dotted attribute path ("a.b.0") into v.
func attr(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	cur := v
	for _, seg := range strings.Split(path, ".") {
		next, ok := step(cur, seg)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

type sortKind int

const (
	kindNone sortKind = iota
	kindNumber
	kindString
	kindBool
)

func kindOf(v any) sortKind {
	switch v.(type) {
	case int64, float64:
		return kindNumber
	case string:
		return kindString
	case bool:
		return kindBool
	}
	return kindNone
}

func fSort(c *fcall, a []any) (any, error) {
	path, err := c.a.str("attribute", "")
	if err != nil {
		return nil, err
	}
	keys := make([]any, len(a))
	kind := kindNone
	for i, v := range a {
		k, ok := attr(v, path)
		if !ok {
			return nil, errorf("Filter `sort` tried to sort by attribute `%s` but an item doesn't have it", path)
		}
		kk := kindOf(k)
		if kk == kindNone {
			return nil, errorf("Filter `sort` received an incorrect type for value: `%s`", shortJSON(k))
		}
		if kind != kindNone && kk != kind {
			return nil, errorf("Filter `sort` received values of different types")
		}
		kind = kk
		keys[i] = k
	}
	idx := make([]int, len(a))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return lessValue(keys[idx[i]], keys[idx[j]]) })
	out := make([]any, len(a))
	for i, k := range idx {
		out[i] = a[k]
	}
	return out, nil
}

func lessValue(x, y any) bool {
	switch a := x.(type) {
	case string:
		b, _ := y.(string)
		return a < b
	case bool:
		b, _ := y.(bool)
		return !a && b
	}
	fx, _ := asFloat(x)
	fy, _ := asFloat(y)
	return fx < fy
}

func fUnique(c *fcall, a []any) (any, error) {
	path, err := c.a.str("attribute", "")
	if err != nil {
		return nil, err
	}
	cs, err := c.a.bool("case_sensitive", false)
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	var out []any
	for _, v := range a {
		k, ok := attr(v, path)
		if !ok {
			return nil, errorf("Filter `unique` tried to use attribute `%s` but an item doesn't have it", path)
		}
		var key string
		switch t := k.(type) {
		case string:
			if !cs {
				t = strings.ToLower(t)
			}
			key = "s" + t
		case int64, float64, bool:
			key = "v" + shortJSON(t)
		default:
			return nil, errorf("Filter `unique` received an incorrect type for value: `%s`", shortJSON(k))
		}
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		out = append(out, v)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func fSlice(c *fcall, a []any) (any, error) {
	n := int64(len(a))
	start, err := c.a.int("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := c.a.int("end", n)
	if err != nil {
		return nil, err
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(0, min(start, n))
	end = max(0, min(end, n))
	if start >= end {
		return []any{}, nil
	}
	out := make([]any, end-start)
	copy(out, a[start:end])
	return out, nil
}

func fGroupBy(c *fcall, a []any) (any, error) {
	path, err := c.a.strReq("attribute")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, v := range a {
		k, ok := attr(v, path)
		if !ok || k == nil {
			continue
		}
		var key string
		switch t := k.(type) {
		case string:
			key = t
		case int64, float64, bool:
			key, _ = renderString(t, 1<<10)
		default:
			return nil, errorf("Filter `group_by` received a non-scalar attribute value `%s`", shortJSON(k))
		}
		list, _ := out[key].([]any)
		out[key] = append(list, v)
	}
	return out, nil
}

func fFilter(c *fcall, a []any) (any, error) {
	path, err := c.a.strReq("attribute")
	if err != nil {
		return nil, err
	}
	want, hasValue := c.a.m["value"]
	out := []any{}
	for _, v := range a {
		k, ok := attr(v, path)
		if !hasValue || want == nil {
			if ok && k != nil {
				out = append(out, v)
			}
			continue
		}
		if ok && valueEqual(k, want) {
			out = append(out, v)
		}
	}
	return out, nil
}

func fMap(c *fcall, a []any) (any, error) {
	path, err := c.a.strReq("attribute")
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, v := range a {
		if k, ok := attr(v, path); ok && k != nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func fConcat(c *fcall, a []any) (any, error) {
	with, ok := c.a.m["with"]
	if !ok {
		return nil, c.a.required("with")
	}
	extra, isList := with.([]any)
	if !isList {
		extra = []any{with}
	}
	if err := c.st.checkLen(len(a) + len(extra)); err != nil {
		return nil, err
	}
	out := make([]any, 0, len(a)+len(extra))
	out = append(out, a...)
	out = append(out, extra...)
	return out, nil
}

func fPluralize(c *fcall, n float64) (any, error) {
	singular, err := c.a.str("singular", "")
	if err != nil {
		return nil, err
	}
	plural, err := c.a.str("plural", "s")
	if err != nil {
		return nil, err
	}
	if math.Abs(n) == 1 {
		return singular, nil
	}
	return plural, nil
}

func fRound(c *fcall, n float64) (any, error) {
	method, err := c.a.str("method", "common")
	if err != nil {
		return nil, err
	}
	precision, err := c.a.int("precision", 0)
	if err != nil {
		return nil, err
	}
	if precision < 0 || precision > 15 {
		return nil, errorf("Filter `round`: precision %d is out of range", precision)
	}
	mult := math.Pow(10, float64(precision))
	var r float64
	switch method {
	case "common":
		r = math.Round(n*mult) / mult
	case "ceil":
		r = math.Ceil(n*mult) / mult
	case "floor":
		r = math.Floor(n*mult) / mult
	default:
		return nil, errorf("Filter `round` received an incorrect value for arg `method`: got `%s`, only common, ceil and floor are allowed", method)
	}
	return r, nil
}

func fFileSize(c *fcall, n float64) (any, error) {
	binary, err := c.a.bool("binary", false)
	if err != nil {
		return nil, err
	}
	base, units := 1000.0, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	if binary {
		base, units = 1024.0, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	}
	abs := math.Abs(n)
	if abs < base {
		return fmt.Sprintf("%s %s", formatFloat(n), units[0]), nil
	}
	i := 0
	for abs >= base && i < len(units)-1 {
		abs /= base
		n /= base
		i++
	}
	s := strconv.FormatFloat(n, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " " + units[i], nil
}

func fAbs(c *fcall) (any, error) {
	switch t := c.in.(type) {
	case int64:
		if t == math.MinInt64 {
			return nil, errorf("Filter `abs`: %d has no absolute value in i64", t)
		}
		if t < 0 {
			return -t, nil
		}
		return t, nil
	case float64:
		return math.Abs(t), nil
	}
	return nil, c.wrongValue("Number")
}

func fLength(c *fcall) (any, error) {
	switch t := c.in.(type) {
	case []any:
		return int64(len(t)), nil
	case map[string]any:
		return int64(len(t)), nil
	case string:
		return int64(utf8.RuneCountInString(t)), nil
	}
	return nil, errorf("Filter `%s` was used on a value that isn't an array, an object, or a string.", c.name)
}

func fReverse(c *fcall) (any, error) {
	switch t := c.in.(type) {
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			out[len(t)-1-i] = v
		}
		return out, nil
	case string:
		r := []rune(t)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	return nil, errorf("Filter `reverse` received an incorrect type for arg `value`: got `%s` but expected Array|String", shortJSON(c.in))
}

func fJSON(c *fcall) (any, error) {
	pretty, err := c.a.bool("pretty", false)
	if err != nil {
		return nil, err
	}
	if v, ok := c.a.m["indent"]; ok && v != nil {
		if n, ok := intOf(v); ok && n > 0 {
			pretty = true
		}
	}
	return jsonEncode(c.in, pretty, c.st.maxBytes())
}

func fAsStr(c *fcall) (any, error) {
	return renderString(c.in, c.st.maxBytes())
}

// fDefault is Tera's default(value=...): the value when the input is
// undefined or null; with Jinja's boolean=true also when it is falsy.
func fDefault(c *fcall) (any, error) {
	def, ok := c.a.m["value"]
	if !ok {
		def, ok = c.a.m["default_value"] // Jinja's name
	}
	if !ok {
		return nil, errorf("The `default` filter requires a `value` argument.")
	}
	boolean, err := c.a.bool("boolean", false)
	if err != nil {
		return nil, err
	}
	switch c.in.(type) {
	case undefinedValue, nil:
		return def, nil
	}
	if boolean && !truthy(c.in) {
		return def, nil
	}
	return c.in, nil
}

func fGet(c *fcall) (any, error) {
	m, ok := c.in.(map[string]any)
	if !ok {
		return nil, c.wrongValue("Object")
	}
	key, err := c.a.strReq("key")
	if err != nil {
		return nil, err
	}
	if v, ok := m[key]; ok {
		return v, nil
	}
	if def, ok := c.a.m["default"]; ok {
		return def, nil
	}
	return nil, errorf("Filter `get` tried to get key `%s` but it wasn't found", key)
}
