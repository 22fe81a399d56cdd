package gonja

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// templateName is the name Tera reports in messages (Brokkr registers every
// template as "template").
const templateName = "template"

// Compilation happens in three steps:
//
//  1. prescan: lex the source with gonja's lexer, report lexer errors with a
//     position, and refuse sources whose bracket or block nesting exceeds
//     MaxRecursionDepth (gonja's parser is recursive).
//  2. parse with gonja (our configuration, control structures and a loader
//     that can only ever return this one source).
//  3. rewrite: walk the AST, reject anything Tera does not have or that we do
//     not support (unknown filters, tests, functions, method calls, slices,
//     break outside a loop, ...) with a line and column, and rewrite the
//     expression nodes into calls to our internal filters so that variables,
//     operators, tests and printing follow Tera's semantics (see ops.go).

// newConfig is the lexer/parser configuration: Jinja delimiters, no
// autoescaping, whitespace kept exactly as written (Tera has no
// trim_blocks/lstrip_blocks and keeps the trailing newline).
func newConfig() *config.Config {
	cfg := config.New()
	cfg.AutoEscape = false
	cfg.StrictUndefined = true
	cfg.TrimBlocks = false
	cfg.LeftStripBlocks = false
	cfg.KeepTrailingNewline = true
	cfg.NewlineSequence = "\n"
	return cfg
}

// singleLoader serves exactly one template source and nothing else, so
// {% include %}-like features can never reach the file system.
type singleLoader struct{ source string }

func (l *singleLoader) Read(path string) (io.Reader, error) {
	if path != templateName {
		return nil, fmt.Errorf("template '%s' not found", path)
	}
	return strings.NewReader(l.source), nil
}

func (l *singleLoader) Resolve(path string) (string, error) {
	if path != templateName {
		return "", fmt.Errorf("template '%s' not found", path)
	}
	return path, nil
}

func (l *singleLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

// compiled is a parsed and rewritten template.
type compiled struct {
	tpl    *exec.Template
	loader loaders.Loader
	cfg    *config.Config
	pos    *posMapper
}

// compile runs the three steps. The returned error is a *template.SyntaxError
// or a *template.LimitError, located in the original source (1-based line,
// column counted in characters).
//
// gonja's lexer and parser can panic on malformed input (v2.9.1 slices out
// of range on a number, a dot and a three-byte letter: "{{0.탮"). What
// does not parse is the author's syntax error, so Validate and Render both
// answer it as one, never as an internal error.
func (e *Engine) compile(source string) (c *compiled, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, &template.SyntaxError{Msg: fmt.Sprintf("template could not be parsed (internal error: %v)", r)}
		}
	}()
	if len(source) > e.limits.MaxSourceBytes {
		return nil, &template.LimitError{
			Limit:  template.LimitSourceBytes,
			Detail: fmt.Sprintf("template source is %d bytes, the limit is %d", len(source), e.limits.MaxSourceBytes),
		}
	}
	// gonja normalises \r\n and \r to \n; do it here so that positions
	// computed from token offsets refer to the same text.
	norm := strings.ReplaceAll(source, "\r\n", "\n")
	norm = strings.ReplaceAll(norm, "\r", "\n")
	mod, err := preprocess(norm)
	if err != nil {
		return nil, locate(err, newPosMapper(norm, norm))
	}
	pm := newPosMapper(norm, mod)
	cfg := newConfig()
	if err := prescan(mod, cfg, e.limits.MaxRecursionDepth, pm); err != nil {
		return nil, locate(err, pm)
	}
	loader := &singleLoader{source: mod}
	tpl, err := exec.NewTemplate(templateName, cfg, loader, e.env)
	if err != nil {
		return nil, locate(parseError(err, mod), pm)
	}
	rw := &rewriter{engine: e, maxDepth: e.limits.MaxRecursionDepth, pos: pm}
	rw.nodes(tpl.Root().Nodes, 0)
	if rw.err != nil {
		return nil, locate(rw.err, pm)
	}
	return &compiled{tpl: tpl, loader: loader, cfg: cfg, pos: pm}, nil
}

// locate converts positions of the preprocessed source into positions of the
// original one.
func locate(err error, pm *posMapper) error {
	var oe *offsetError
	if errors.As(err, &oe) {
		line, col := pm.fromOffset(oe.off)
		return &template.SyntaxError{Line: line, Column: col, Msg: oe.msg}
	}
	var se *template.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		se.Line, se.Column = pm.original(se.Line, max(se.Column, 1))
	}
	return err
}

// prescan lexes the source, reports the first lexer error with its position
// and bounds the nesting depth before the recursive parser sees the input.
func prescan(src string, cfg *config.Config, maxDepth int, pm *posMapper) error {
	stream := tokens.LexAll(src, cfg)
	bracket, block := 0, 0
	afterBlockBegin := false
	for {
		tok := stream.Current()
		if tok == nil {
			return nil
		}
		switch tok.Type {
		case tokens.EOF:
			return nil
		case tokens.Error:
			return &offsetError{off: tok.Pos, msg: lexerMessage(tok.Val)}
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			bracket++
			if bracket > maxDepth {
				return depthError(pm, tok, maxDepth)
			}
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			if bracket > 0 {
				bracket--
			}
		case tokens.VariableEnd, tokens.BlockEnd, tokens.VariableBegin:
			bracket = 0
		case tokens.Name:
			if afterBlockBegin {
				switch {
				case tok.Val == "if" || tok.Val == "for" || tok.Val == "filter":
					block++
					if block > maxDepth {
						return depthError(pm, tok, maxDepth)
					}
				case strings.HasPrefix(tok.Val, "end"):
					if block > 0 {
						block--
					}
				}
			}
		}
		afterBlockBegin = tok.Type == tokens.BlockBegin
		if stream.End() {
			if stream.IsError() {
				continue
			}
			return nil
		}
		stream.Next()
	}
}

func depthError(pm *posMapper, tok *tokens.Token, max int) error {
	line, col := pm.at(tok)
	return &template.LimitError{
		Limit:  template.LimitRecursionDepth,
		Detail: fmt.Sprintf("line %d, column %d: nesting deeper than %d levels", line, col, max),
	}
}

func lexerMessage(val string) string {
	switch {
	case val == "":
		return "unexpected character"
	case strings.HasPrefix(val, "Unexpected") || strings.HasPrefix(val, "Unbalanced") ||
		strings.HasPrefix(val, "unclosed") || strings.HasPrefix(val, "Unable") ||
		strings.Contains(val, "numeric token"):
		return val
	}
	// An unterminated string literal: gonja reports the text it read.
	return "unterminated string literal starting with " + strconv.Quote(truncate(val, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseError converts gonja's parse failure into a SyntaxError.
func parseError(err error, src string) error {
	var le *template.LimitError
	if errors.As(err, &le) {
		return le
	}
	var se *template.SyntaxError
	if errors.As(err, &se) {
		return se
	}
	var pe *parser.SyntaxError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Raw != "" && !strings.HasPrefix(msg, "Unexpected EOF") && pe.Line == 0 {
			msg += ": " + pe.Raw
		}
		msg = friendlyParseMessage(msg)
		return &template.SyntaxError{Line: pe.Line, Column: pe.Column, Msg: msg}
	}
	// Errors without a position; strip gonja's "failed to parse template
	// '<whole source>': " prefix.
	msg := err.Error()
	prefix := "failed to parse template '" + src + "': "
	msg = strings.TrimPrefix(msg, prefix)
	return &template.SyntaxError{Msg: friendlyParseMessage(msg)}
}

func friendlyParseMessage(msg string) string {
	switch {
	case strings.HasPrefix(msg, "ControlStructure '"):
		name := strings.TrimPrefix(msg, "ControlStructure '")
		if i := strings.IndexByte(name, '\''); i >= 0 {
			name = name[:i]
		}
		return fmt.Sprintf("unknown tag %q", name)
	case strings.HasPrefix(msg, "Unexpected EOF, expected tag "):
		tags := strings.TrimSuffix(strings.TrimPrefix(msg, "Unexpected EOF, expected tag "), ".")
		return "unexpected end of template, expected {% " + strings.ReplaceAll(tags, " or ", " %} or {% ") + " %}"
	}
	return msg
}

// syntaxAt builds a positioned syntax error.
func syntaxAt(tok *tokens.Token, format string, args ...any) *template.SyntaxError {
	se := &template.SyntaxError{Msg: fmt.Sprintf(format, args...)}
	if tok != nil {
		se.Line, se.Column = tok.Line, tok.Col
	}
	return se
}

// ---------------------------------------------------------------------------
// AST rewriting

// Internal filter names contain a ':' so no template can call them.
const (
	fVar   = "brokkr:var"
	fPath  = "brokkr:path"
	fPrint = "brokkr:print"
	fBool  = "brokkr:bool"
	fNot   = "brokkr:not"
	fNeg   = "brokkr:neg"
	fPos   = "brokkr:pos"
	fTest  = "brokkr:test"
	fLit   = "brokkr:lit"
)

var binaryOps = map[tokens.Type]string{
	tokens.Addition:           "brokkr:add",
	tokens.Subtraction:        "brokkr:sub",
	tokens.Multiply:           "brokkr:mul",
	tokens.Division:           "brokkr:div",
	tokens.FloorDivision:      "brokkr:floordiv",
	tokens.Modulo:             "brokkr:mod",
	tokens.Power:              "brokkr:pow",
	tokens.Tilde:              "brokkr:concat",
	tokens.Equals:             "brokkr:eq",
	tokens.Ne:                 "brokkr:ne",
	tokens.LowerThan:          "brokkr:lt",
	tokens.LowerThanOrEqual:   "brokkr:le",
	tokens.GreaterThan:        "brokkr:gt",
	tokens.GreaterThanOrEqual: "brokkr:ge",
	tokens.In:                 "brokkr:in",
}

type rewriter struct {
	engine   *Engine
	pos      *posMapper
	maxDepth int
	loops    int
	err      error
}

func (rw *rewriter) fail(err error) {
	if rw.err == nil {
		rw.err = err
	}
}

func (rw *rewriter) tooDeep(tok *tokens.Token, depth int) bool {
	if depth <= rw.maxDepth {
		return false
	}
	detail := fmt.Sprintf("nesting deeper than %d levels", rw.maxDepth)
	if line, col := rw.pos.at(tok); line > 0 {
		detail = fmt.Sprintf("line %d, column %d: %s", line, col, detail)
	}
	rw.fail(&template.LimitError{Limit: template.LimitRecursionDepth, Detail: detail})
	return true
}

func (rw *rewriter) nodes(list []nodes.Node, depth int) {
	for _, n := range list {
		if rw.err != nil {
			return
		}
		rw.node(n, depth)
	}
}

func (rw *rewriter) wrapper(w *nodes.Wrapper, depth int) {
	if w != nil {
		rw.nodes(w.Nodes, depth)
	}
}

func (rw *rewriter) node(n nodes.Node, depth int) {
	switch t := n.(type) {
	case nil, *nodes.Data, *nodes.Comment:
	case *nodes.Output:
		if t.Condition != nil {
			t.Condition = rw.boolean(t.Condition, 0)
			if t.Alternative != nil {
				t.Alternative = appendFilter(rw.expr(t.Alternative, 0), internalCall(t.Start, fPrint))
			}
		}
		t.Expression = appendFilter(rw.expr(t.Expression, 0), internalCall(t.Start, fPrint))
	case *nodes.Wrapper:
		rw.wrapper(t, depth)
	case *nodes.ControlStructureBlock:
		rw.control(t, depth)
	default:
		rw.fail(syntaxAt(n.Position(), "unsupported template element"))
	}
}

func (rw *rewriter) control(b *nodes.ControlStructureBlock, depth int) {
	if rw.tooDeep(b.Location, depth+1) {
		return
	}
	switch cs := b.ControlStructure.(type) {
	case *controlStructures.IfControlStructure:
		for i, c := range cs.Conditions {
			cs.Conditions[i] = rw.boolean(c, 0)
		}
		for _, w := range cs.Wrappers {
			rw.wrapper(w, depth+1)
		}
	case *forNode:
		cs.iterable = rw.expr(cs.iterable, 0)
		rw.loops++
		rw.wrapper(cs.body, depth+1)
		rw.loops--
		rw.wrapper(cs.empty, depth+1)
	case *setNode:
		cs.value = rw.expr(cs.value, 0)
	case *filterNode:
		for _, fc := range cs.filters {
			rw.userFilter(fc, 0)
		}
		rw.wrapper(cs.body, depth+1)
	case *rawNode:
	case *controlStructures.BreakControlStructure:
		if rw.loops == 0 {
			rw.fail(syntaxAt(b.Location, "{%% break %%} must be inside a {%% for %%} loop"))
		}
	case *controlStructures.ContinueControlStructure:
		if rw.loops == 0 {
			rw.fail(syntaxAt(b.Location, "{%% continue %%} must be inside a {%% for %%} loop"))
		}
	default:
		rw.fail(syntaxAt(b.Location, "unknown tag %q", b.Name))
	}
}

// boolean rewrites a condition: the result is always a bool, and a condition
// based on a variable is false when the variable is undefined or its filters
// fail (Tera's eval_as_bool). Only then is the expression nested, so that its
// errors reach brokkr:bool.
func (rw *rewriter) boolean(e nodes.Expression, depth int) nodes.Expression {
	if e == nil {
		return nil
	}
	pathish := isPathish(e)
	inner := rw.expr(e, depth)
	fc := internalCall(e.Position(), fBool, boolNode(e.Position(), pathish))
	if pathish {
		return nestFilter(inner, fc)
	}
	return appendFilter(inner, fc)
}

// isPathish reports whether e is a variable reference, possibly followed by
// filters: Tera treats an error while evaluating such an expression in a
// boolean context as false.
func isPathish(e nodes.Expression) bool {
	switch t := e.(type) {
	case *nodes.Name:
		return true
	case *nodes.GetAttribute, *nodes.GetItem:
		return true
	case *nodes.FilteredExpression:
		return isPathish(t.Expression)
	}
	return false
}

func (rw *rewriter) expr(e nodes.Expression, depth int) nodes.Expression {
	if e == nil || rw.err != nil {
		return e
	}
	if rw.tooDeep(e.Position(), depth+1) {
		return e
	}
	d := depth + 1
	switch t := e.(type) {
	case *nodes.String, *nodes.Integer, *nodes.Float, *nodes.Bool, *nodes.None:
		return e
	case *nodes.List:
		for i, v := range t.Val {
			t.Val[i] = rw.expr(v, d)
		}
		return appendFilter(e, internalCall(t.Location, fLit))
	case *nodes.Tuple:
		for i, v := range t.Val {
			t.Val[i] = rw.expr(v, d)
		}
		return appendFilter(e, internalCall(t.Location, fLit))
	case *nodes.Dict:
		for _, p := range t.Pairs {
			p.Key = rw.expr(p.Key, d)
			p.Value = rw.expr(p.Value, d)
		}
		return appendFilter(e, internalCall(t.Token, fLit))
	case *nodes.Name, *nodes.GetAttribute, *nodes.GetItem:
		return rw.path(e, d)
	case *nodes.GetSlice:
		rw.fail(syntaxAt(t.Location, "slice syntax is not supported, use the `slice` filter"))
		return e
	case *nodes.Call:
		return rw.call(t, d)
	case *nodes.Negation:
		pathish := isPathish(t.Term)
		inner := rw.expr(t.Term, d)
		return appendFilter(inner, internalCall(t.Operator, fNot, boolNode(t.Operator, pathish)))
	case *nodes.UnaryExpression:
		inner := rw.expr(t.Term, d)
		name := fPos
		if t.Negative {
			name = fNeg
		}
		return appendFilter(inner, internalCall(t.Operator, name))
	case *nodes.BinaryExpression:
		op := t.Operator.Token
		if op.Type == tokens.And || op.Type == tokens.Or {
			t.Left = rw.boolean(t.Left, d)
			t.Right = rw.boolean(t.Right, d)
			return e
		}
		name, ok := binaryOps[op.Type]
		if !ok {
			rw.fail(syntaxAt(op, "unsupported operator %q", op.Val))
			return e
		}
		left := rw.expr(t.Left, d)
		right := rw.expr(t.Right, d)
		return appendFilter(left, internalCall(op, name, right))
	case *nodes.FilteredExpression:
		inner := rw.expr(t.Expression, d)
		for _, fc := range t.Filters {
			rw.userFilter(fc, d)
		}
		// Merge a rewritten inner chain into this one: same semantics, no
		// extra nesting, and an error stops the whole chain at once.
		if fe, ok := inner.(*nodes.FilteredExpression); ok {
			fe.Filters = append(fe.Filters, t.Filters...)
			return fe
		}
		t.Expression = inner
		return e
	case *nodes.TestExpression:
		return rw.test(t, d)
	case *nodes.Error:
		rw.fail(syntaxAt(t.Location, "%v", t.Error))
		return e
	}
	rw.fail(syntaxAt(e.Position(), "unsupported expression"))
	return e
}

func (rw *rewriter) userFilter(fc *nodes.FilterCall, depth int) {
	if fc == nil {
		return
	}
	if _, ok := rw.engine.filterNames[fc.Name]; !ok {
		rw.fail(syntaxAt(fc.Token, "unknown filter %q", fc.Name))
		return
	}
	for i, a := range fc.Args {
		fc.Args[i] = rw.expr(a, depth)
	}
	for k, a := range fc.Kwargs {
		fc.Kwargs[k] = rw.expr(a, depth)
	}
}

func (rw *rewriter) test(t *nodes.TestExpression, depth int) nodes.Expression {
	tc := t.Test
	if _, ok := testers[tc.Name]; !ok {
		rw.fail(syntaxAt(tc.Token, "unknown test %q", tc.Name))
		return t
	}
	if len(tc.Kwargs) > 0 {
		rw.fail(syntaxAt(tc.Token, "test %q does not take named arguments", tc.Name))
		return t
	}
	args := []nodes.Expression{strNode(tc.Token, tc.Name)}
	for _, a := range tc.Args {
		args = append(args, rw.expr(a, depth))
	}
	inner := rw.expr(t.Expression, depth)
	return appendFilter(inner, internalCall(tc.Token, fTest, args...))
}

func (rw *rewriter) call(c *nodes.Call, depth int) nodes.Expression {
	name, ok := c.Func.(*nodes.Name)
	if !ok || c.Parent != nil {
		rw.fail(syntaxAt(c.Location, "method calls are not supported; call a function by name or use a filter"))
		return c
	}
	if _, ok := functions[name.Name.Val]; !ok {
		rw.fail(syntaxAt(name.Name, "unknown function %q", name.Name.Val))
		return c
	}
	for i, a := range c.Args {
		c.Args[i] = rw.expr(a, depth)
	}
	for k, a := range c.Kwargs {
		c.Kwargs[k] = rw.expr(a, depth)
	}
	return c
}

// path rewrites a variable reference a.b[c].0 into one call of brokkr:var
// (or brokkr:path when the root is not a name) with every segment as an
// argument, so lookups follow Tera: a missing variable, key or index is an
// "undefined" error naming the whole path.
func (rw *rewriter) path(e nodes.Expression, depth int) nodes.Expression {
	var segs []nodes.Expression
	var display []string
	cur := nodes.Node(e)
	for {
		switch t := cur.(type) {
		case *nodes.GetAttribute:
			if t.Attribute != "" {
				segs = append(segs, strNode(t.Location, t.Attribute))
				display = append(display, "."+t.Attribute)
			} else {
				segs = append(segs, intNode(t.Location, t.Index))
				display = append(display, "."+strconv.Itoa(t.Index))
			}
			cur = t.Node
			continue
		case *nodes.GetItem:
			if t.Arg == nil {
				rw.fail(syntaxAt(t.Location, "empty subscript"))
				return e
			}
			arg, ok := t.Arg.(nodes.Expression)
			if !ok {
				rw.fail(syntaxAt(t.Location, "unsupported subscript"))
				return e
			}
			segs = append(segs, rw.expr(arg, depth))
			display = append(display, "["+subscriptDisplay(arg)+"]")
			cur = t.Node
			continue
		}
		break
	}
	// Segments were collected outside-in.
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
		display[i], display[j] = display[j], display[i]
	}
	if name, ok := cur.(*nodes.Name); ok {
		tok := name.Name
		full := tok.Val + strings.Join(display, "")
		args := append([]nodes.Expression{strNode(tok, tok.Val)}, segs...)
		fc := internalCall(tok, fVar, args...)
		fc.Kwargs["path"] = strNode(tok, full)
		return &nodes.FilteredExpression{Expression: &nodes.None{Location: synthTok(tok, tokens.Name, "none")}, Filters: []*nodes.FilterCall{fc}}
	}
	root, ok := cur.(nodes.Expression)
	if !ok {
		rw.fail(syntaxAt(e.Position(), "unsupported expression"))
		return e
	}
	rootExpr := rw.expr(root, depth)
	fc := internalCall(e.Position(), fPath, segs...)
	fc.Kwargs["path"] = strNode(e.Position(), "(expression)"+strings.Join(display, ""))
	return appendFilter(rootExpr, fc)
}

func subscriptDisplay(arg nodes.Expression) string {
	switch t := arg.(type) {
	case *nodes.String:
		return strconv.Quote(t.Val)
	case *nodes.Integer:
		return strconv.Itoa(t.Val)
	case *nodes.Name:
		return t.Name.Val
	case *nodes.GetAttribute, *nodes.GetItem:
		return t.String()
	}
	return "…"
}

// ---------------------------------------------------------------------------
// node constructors

func synthTok(at *tokens.Token, typ tokens.Type, val string) *tokens.Token {
	t := &tokens.Token{Type: typ, Val: val}
	if at != nil {
		t.Line, t.Col, t.Pos = at.Line, at.Col, at.Pos
	}
	return t
}

func strNode(at *tokens.Token, s string) *nodes.String {
	return &nodes.String{Location: synthTok(at, tokens.String, s), Val: s}
}

func intNode(at *tokens.Token, i int) *nodes.Integer {
	return &nodes.Integer{Location: synthTok(at, tokens.Integer, strconv.Itoa(i)), Val: i}
}

func boolNode(at *tokens.Token, b bool) *nodes.Bool {
	return &nodes.Bool{Location: synthTok(at, tokens.Name, strconv.FormatBool(b)), Val: b}
}

func internalCall(at *tokens.Token, name string, args ...nodes.Expression) *nodes.FilterCall {
	if args == nil {
		args = []nodes.Expression{}
	}
	return &nodes.FilterCall{Token: synthTok(at, tokens.Name, name), Name: name, Args: args, Kwargs: map[string]nodes.Expression{}}
}

// appendFilter applies fc to the result of e. When e already is a filter
// chain, fc is appended to it (same semantics, no extra nesting): an error
// anywhere in the chain stops it, so fc never sees an error input.
func appendFilter(e nodes.Expression, fc *nodes.FilterCall) nodes.Expression {
	if fe, ok := e.(*nodes.FilteredExpression); ok {
		fe.Filters = append(fe.Filters, fc)
		return fe
	}
	return &nodes.FilteredExpression{Expression: e, Filters: []*nodes.FilterCall{fc}}
}

// nestFilter applies fc to e in a new chain: gonja hands an error produced by
// e to the first filter of the enclosing chain. Only brokkr:bool for
// variable-based conditions wants that (it turns the error into false).
func nestFilter(e nodes.Expression, fc *nodes.FilterCall) nodes.Expression {
	return &nodes.FilteredExpression{Expression: e, Filters: []*nodes.FilterCall{fc}}
}
