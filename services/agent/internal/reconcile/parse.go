package reconcile

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// ParseObjects parses multi-document YAML the way Prepare does (JSON
// normalisation, apiVersion/kind/metadata.name checks, *List expansion,
// server-owned fields stripped) without stamping any stack metadata: work
// orders apply their documents like deployment objects but belong to no
// stack, so pruning never sees them. Every bad document is named in one
// *InvalidError; YAML without a single object is an *InvalidError too. It
// never panics.
func ParseObjects(src string) (objs []Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			objs, err = nil, &InvalidError{Problems: []string{fmt.Sprintf("unexpected error while parsing the YAML: %v", r)}}
		}
	}()
	docs, err := stack.SplitYAML(src)
	if err != nil {
		return nil, &InvalidError{Problems: []string{err.Error()}}
	}
	var problems []string
	for _, d := range docs {
		us, errs := fromDocument(d)
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("document %d: %v", d.Index, e))
		}
		for _, u := range us {
			stripServerOwned(u)
			objs = append(objs, Object{Doc: d.Index, U: u})
		}
	}
	if len(problems) > 0 {
		return nil, &InvalidError{Problems: problems}
	}
	if len(objs) == 0 {
		return nil, &InvalidError{Problems: []string{"no Kubernetes objects found in the YAML"}}
	}
	return objs, nil
}

func stripServerOwned(u *unstructured.Unstructured) {
	delete(u.Object, "status")
	if md, ok := u.Object["metadata"].(map[string]any); ok {
		for _, f := range serverOwned {
			delete(md, f)
		}
	}
}
