package template

// Annotation is a key/value pair attached to a template or a stack.
type Annotation struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// String renders the annotation as "key=value" (the form used in 422 bodies).
func (a Annotation) String() string { return a.Key + "=" + a.Value }

// MatchResult is the outcome of matching a template against a stack.
type MatchResult struct {
	Matches            bool
	MissingLabels      []string
	MissingAnnotations []Annotation
}

// Match applies the instantiation guard
// (docs/compatibility.md#template-matching):
// a template with neither labels nor annotations matches every stack;
// otherwise every template label must be one of the stack's labels and every
// template annotation (exact key and value) one of the stack's annotations.
// Extra stack labels or annotations do not matter. Labels compare as exact
// strings ("env:prod" and "env=prod" differ).
//
// The missing lists keep the template's order, without duplicates, and are
// never nil (so they serialise as [] rather than null).
func Match(templateLabels []string, templateAnnotations []Annotation, stackLabels []string, stackAnnotations []Annotation) MatchResult {
	res := MatchResult{MissingLabels: []string{}, MissingAnnotations: []Annotation{}}
	have := make(map[string]struct{}, len(stackLabels))
	for _, l := range stackLabels {
		have[l] = struct{}{}
	}
	seen := map[string]struct{}{}
	for _, l := range templateLabels {
		if _, ok := have[l]; ok {
			continue
		}
		if _, dup := seen[l]; dup {
			continue
		}
		seen[l] = struct{}{}
		res.MissingLabels = append(res.MissingLabels, l)
	}
	haveAnn := make(map[Annotation]struct{}, len(stackAnnotations))
	for _, a := range stackAnnotations {
		haveAnn[a] = struct{}{}
	}
	seenAnn := map[Annotation]struct{}{}
	for _, a := range templateAnnotations {
		if _, ok := haveAnn[a]; ok {
			continue
		}
		if _, dup := seenAnn[a]; dup {
			continue
		}
		seenAnn[a] = struct{}{}
		res.MissingAnnotations = append(res.MissingAnnotations, a)
	}
	res.Matches = len(res.MissingLabels) == 0 && len(res.MissingAnnotations) == 0
	return res
}

// MissingAnnotationStrings renders the missing annotations as "key=value"
// strings (docs/compatibility.md#template-matching).
func (r MatchResult) MissingAnnotationStrings() []string {
	out := make([]string, 0, len(r.MissingAnnotations))
	for _, a := range r.MissingAnnotations {
		out = append(out, a.String())
	}
	return out
}
