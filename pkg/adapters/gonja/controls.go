package gonja

import (
	"errors"
	"fmt"
	"io"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// The tags Tera has (for a single template): if/elif/else, for (with
// key, value and an optional else), set, set_global, filter sections, raw,
// break and continue. if, break and continue are gonja's own; the others are
// ours so that loops are counted, scoping follows Tera and every expression
// is visible to the rewriter. Tags that need other templates (include,
// extends, block, import, macro) are not registered and fail validation.
func controlStructureSet() *exec.ControlStructureSet {
	get := func(name string) parser.ControlStructureParser {
		p, ok := controlStructures.All.Get(name)
		if !ok {
			panic("gonja control structure " + name + " missing")
		}
		return p
	}
	return exec.NewControlStructureSet(map[string]parser.ControlStructureParser{
		"if":         positioned(get("if")),
		"break":      positioned(get("break")),
		"continue":   positioned(get("continue")),
		"for":        positioned(forParser),
		"set":        positioned(setParser(false)),
		"set_global": positioned(setParser(true)),
		"filter":     positioned(filterParser),
		"raw":        positioned(rawParser),
	})
}

// positioned attaches a position to parse errors that have none.
func positioned(p parser.ControlStructureParser) parser.ControlStructureParser {
	return func(doc *parser.Parser, args *parser.Parser) (cs nodes.ControlStructure, err error) {
		at := args.Current()
		if at == nil || at.Line == 0 {
			at = doc.Current()
		}
		cs, err = p(doc, args)
		if err == nil {
			return cs, nil
		}
		var pe *parser.SyntaxError
		var se *template.SyntaxError
		if errors.As(err, &se) {
			return nil, err
		}
		if errors.As(err, &pe) {
			if pe.Line == 0 && at != nil && at.Line > 0 {
				pe.Line, pe.Column = at.Line, at.Col
			}
			return nil, err
		}
		if at != nil && at.Line > 0 {
			return nil, &parser.SyntaxError{Message: err.Error(), Line: at.Line, Column: at.Col}
		}
		return nil, err
	}
}

// ---------------------------------------------------------------------------
// for

type forNode struct {
	tok      *tokens.Token
	keyVar   string // empty unless "for k, v in map"
	valVar   string
	iterable nodes.Expression
	display  string
	body     *nodes.Wrapper
	empty    *nodes.Wrapper
}

func (f *forNode) Position() *tokens.Token { return f.tok }
func (f *forNode) String() string {
	return fmt.Sprintf("for(Line=%d Col=%d)", f.tok.Line, f.tok.Col)
}

func forParser(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	f := &forNode{tok: args.Current()}
	first := args.Match(tokens.Name)
	if first == nil {
		return nil, args.Error("expected a loop variable name after 'for'", args.Current())
	}
	f.valVar = first.Val
	if args.Match(tokens.Comma) != nil {
		second := args.Match(tokens.Name)
		if second == nil {
			return nil, args.Error("expected a second loop variable name after ','", args.Current())
		}
		f.keyVar, f.valVar = first.Val, second.Val
	}
	if args.Match(tokens.In) == nil {
		return nil, args.Error("expected 'in' in the for loop", args.Current())
	}
	start := args.Current()
	iter, err := args.ParseExpression()
	if err != nil {
		return nil, err
	}
	if iter == nil {
		return nil, args.Error("expected an expression to iterate on", args.Current())
	}
	f.iterable = iter
	f.display = start.Val
	if !args.End() {
		return nil, args.Error("unexpected tokens after the for-loop container", args.Current())
	}
	body, endArgs, err := doc.WrapUntil("else", "endfor")
	if err != nil {
		return nil, err
	}
	if !endArgs.End() {
		return nil, endArgs.Error("arguments are not allowed here", endArgs.Current())
	}
	f.body = body
	if body.EndTag == "else" {
		empty, endArgs, err := doc.WrapUntil("endfor")
		if err != nil {
			return nil, err
		}
		if !endArgs.End() {
			return nil, endArgs.Error("arguments are not allowed here", endArgs.Current())
		}
		f.empty = empty
	}
	return f, nil
}

type loopItem struct {
	key any
	val any
}

func (f *forNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	st := stateFrom(r.Environment.Context)
	obj := r.Eval(f.iterable)
	if obj.IsError() {
		return obj
	}
	var items []loopItem
	switch t := native(obj).(type) {
	case undefinedValue:
		return t.err()
	case []any:
		if f.keyVar != "" {
			return errorf("Tried to iterate using key value on variable `%s`, but it isn't an object/map", f.display)
		}
		items = make([]loopItem, len(t))
		for i, v := range t {
			items[i] = loopItem{val: v}
		}
	case string:
		if f.keyVar != "" {
			return errorf("Tried to iterate using key value on variable `%s`, but it isn't an object/map", f.display)
		}
		for _, r := range t {
			items = append(items, loopItem{val: string(r)})
		}
	case map[string]any:
		if f.keyVar == "" {
			return errorf("Tried to iterate using key value on variable `%s`, but it is missing a key", f.display)
		}
		for _, k := range sortedKeys(t) {
			items = append(items, loopItem{key: k, val: t[k]})
		}
	default:
		return errorf("Tried to iterate on a container (`%s`) that has a unsupported type", f.display)
	}
	if len(items) == 0 {
		if f.empty != nil {
			return r.ExecuteWrapper(f.empty)
		}
		return nil
	}
	n := len(items)
	for i, it := range items {
		if err := st.iterate(); err != nil {
			return err
		}
		sub := r.Inherit()
		ctx := sub.Environment.Context
		if f.keyVar != "" {
			ctx.Set(varPrefix+f.keyVar, it.key)
		}
		ctx.Set(varPrefix+f.valVar, it.val)
		ctx.Set(varPrefix+"loop", map[string]any{
			"index":     int64(i + 1),
			"index0":    int64(i),
			"first":     i == 0,
			"last":      i == n-1,
			"length":    int64(n),
			"revindex":  int64(n - i),
			"revindex0": int64(n - i - 1),
		})
		if err := sub.ExecuteWrapper(f.body); err != nil {
			var brk *controlStructures.LoopBreakError
			var cont *controlStructures.LoopContinueError
			switch {
			case errors.As(err, &brk):
				return nil
			case errors.As(err, &cont):
				continue
			}
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// set / set_global

type setNode struct {
	tok    *tokens.Token
	name   string
	value  nodes.Expression
	global bool
}

func (s *setNode) Position() *tokens.Token { return s.tok }
func (s *setNode) String() string {
	return fmt.Sprintf("set(Line=%d Col=%d)", s.tok.Line, s.tok.Col)
}

func setParser(global bool) parser.ControlStructureParser {
	return func(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		s := &setNode{tok: args.Current(), global: global}
		name := args.Match(tokens.Name)
		if name == nil {
			return nil, args.Error("expected a variable name after 'set'", args.Current())
		}
		s.name = name.Val
		if args.Match(tokens.Assign) == nil {
			return nil, args.Error("expected '=' after the variable name (block assignments are not supported)", args.Current())
		}
		v, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, args.Error("expected a value", args.Current())
		}
		s.value = v
		if !args.End() {
			return nil, args.Error("unexpected tokens after the value", args.Current())
		}
		return s, nil
	}
}

func (s *setNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v := r.Eval(s.value)
	if v.IsError() {
		return v
	}
	val := native(v)
	if u, ok := val.(undefinedValue); ok {
		return u.err()
	}
	if s.global {
		if st := stateFrom(r.Environment.Context); st != nil && st.root != nil {
			st.root.Set(varPrefix+s.name, val)
			return nil
		}
	}
	r.Environment.Context.Set(varPrefix+s.name, val)
	return nil
}

// ---------------------------------------------------------------------------
// filter sections

type filterNode struct {
	tok     *tokens.Token
	filters []*nodes.FilterCall
	body    *nodes.Wrapper
}

func (f *filterNode) Position() *tokens.Token { return f.tok }
func (f *filterNode) String() string {
	return fmt.Sprintf("filter(Line=%d Col=%d)", f.tok.Line, f.tok.Col)
}

func filterParser(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	f := &filterNode{tok: args.Current()}
	for !args.End() {
		fc, err := args.ParseFilter()
		if err != nil {
			return nil, err
		}
		f.filters = append(f.filters, fc)
		if args.Match(tokens.Pipe) == nil {
			break
		}
	}
	if len(f.filters) == 0 {
		return nil, args.Error("expected a filter name after 'filter'", args.Current())
	}
	if !args.End() {
		return nil, args.Error("unexpected tokens after the filter", args.Current())
	}
	body, endArgs, err := doc.WrapUntil("endfilter")
	if err != nil {
		return nil, err
	}
	if !endArgs.End() {
		return nil, endArgs.Error("arguments are not allowed here", endArgs.Current())
	}
	f.body = body
	return f, nil
}

func (f *filterNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	st := stateFrom(r.Environment.Context)
	buf := &limitWriter{max: st.maxBytes(), st: st}
	sub := r.Inherit()
	sub.Output = buf
	if err := sub.ExecuteWrapper(f.body); err != nil {
		return err
	}
	value := exec.AsValue(buf.b.String())
	ev := r.Evaluator()
	for _, fc := range f.filters {
		value = ev.ExecuteFilter(fc, value)
		if value.IsError() {
			return value
		}
	}
	s, err := renderString(native(value), st.maxBytes())
	if err != nil {
		return err
	}
	_, err = io.WriteString(r.Output, s)
	return err
}

// ---------------------------------------------------------------------------
// raw

type rawNode struct {
	tok  *tokens.Token
	data string
}

func (n *rawNode) Position() *tokens.Token { return n.tok }
func (n *rawNode) String() string          { return "raw" }

func rawParser(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	n := &rawNode{tok: args.Current()}
	if !args.End() {
		return nil, args.Error("raw does not take arguments", args.Current())
	}
	body, _, err := doc.WrapUntil("endraw")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, child := range body.Nodes {
		d, ok := child.(*nodes.Data)
		if !ok {
			return nil, doc.Error("unexpected content in raw block", child.Position())
		}
		text := d.Data.Val
		if d.Trim.Left {
			text = strings.TrimLeft(text, " \r\n\t")
		}
		if d.Trim.Right {
			text = strings.TrimRight(text, " \r\n\t")
		}
		b.WriteString(text)
	}
	n.data = b.String()
	return n, nil
}

func (n *rawNode) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	_, err := io.WriteString(r.Output, n.data)
	return err
}
