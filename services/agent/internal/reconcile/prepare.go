// Package reconcile turns a deployment object into cluster state: it parses
// and stamps the YAML, applies it in the documented order with server-side
// apply, prunes what the stack no longer wants, processes deletion markers
// and detects drift (services/agent/README.md#reconciliation,
// docs/compatibility.md#apply-pipeline).
package reconcile

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Tracking metadata (docs/compatibility.md#tracking-metadata).
const (
	AnnotationStack              = "k8s.brokkr.io/stack"
	AnnotationChecksum           = "k8s.brokkr.io/deployment-checksum"
	AnnotationDeploymentObjectID = "brokkr.io/deployment-object-id"
	AnnotationOwnerID            = "brokkr.io/owner-id"
	LabelStack                   = "k8s.brokkr.io/stack"
)

// Object is one Kubernetes object of a deployment object, stamped and ready
// to apply.
type Object struct {
	// Doc is the 1-based YAML document the object came from.
	Doc int
	U   *unstructured.Unstructured
}

// Describe names the object for messages: "ConfigMap ns/name (document 2)".
func (o Object) Describe() string {
	return describe(o.U) + fmt.Sprintf(" (document %d)", o.Doc)
}

func describe(u *unstructured.Unstructured) string {
	name := u.GetName()
	if ns := u.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return fmt.Sprintf("%s %s", u.GetKind(), name)
}

// IsPriority reports whether the object is applied before validation:
// Namespaces and CustomResourceDefinitions.
func (o Object) IsPriority() bool { return isNamespace(o.U) || isCRD(o.U) }

func isNamespace(u *unstructured.Unstructured) bool {
	return u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1"
}

func isCRD(u *unstructured.Unstructured) bool {
	return u.GetKind() == "CustomResourceDefinition" && strings.HasPrefix(u.GetAPIVersion(), "apiextensions.k8s.io/")
}

// Plan is a prepared deployment object.
type Plan struct {
	DeploymentObjectID uuid.UUID
	StackID            uuid.UUID
	Checksum           string
	// Priority holds Namespaces and CRDs, Regular everything else; both keep
	// document order.
	Priority []Object
	Regular  []Object
}

// All returns priority then regular objects.
func (p Plan) All() []Object {
	out := make([]Object, 0, len(p.Priority)+len(p.Regular))
	return append(append(out, p.Priority...), p.Regular...)
}

// InvalidError lists every problem found while preparing a deployment
// object. It is permanent: retrying the same YAML cannot help.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string {
	return "invalid deployment object:\n" + strings.Join(e.Problems, "\n")
}

// Prepare parses a deployment object's YAML and stamps every object with the
// tracking metadata. It never panics; every bad document is named in the
// returned *InvalidError.
func Prepare(do stack.DeploymentObject, agentID uuid.UUID) (plan Plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			plan, err = Plan{}, &InvalidError{Problems: []string{fmt.Sprintf("unexpected error while preparing the YAML: %v", r)}}
		}
	}()
	plan = Plan{DeploymentObjectID: do.ID, StackID: do.StackID, Checksum: do.YAMLChecksum}
	docs, err := stack.SplitYAML(do.YAMLContent)
	if err != nil {
		return Plan{}, &InvalidError{Problems: []string{err.Error()}}
	}
	var problems []string
	for _, d := range docs {
		objs, errs := fromDocument(d)
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("document %d: %v", d.Index, e))
		}
		for _, u := range objs {
			stamp(u, do, agentID)
			o := Object{Doc: d.Index, U: u}
			if o.IsPriority() {
				plan.Priority = append(plan.Priority, o)
			} else {
				plan.Regular = append(plan.Regular, o)
			}
		}
	}
	if len(problems) > 0 {
		return Plan{}, &InvalidError{Problems: problems}
	}
	return plan, nil
}

// fromDocument converts one decoded document into objects; a `kind: List`
// (or any *List with items) is expanded.
func fromDocument(d stack.Document) ([]*unstructured.Unstructured, []error) {
	v, err := normalize(d.Value, "")
	if err != nil {
		return nil, []error{err}
	}
	m := v.(map[string]any)
	kind, _ := m["kind"].(string)
	if items, ok := m["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		var out []*unstructured.Unstructured
		var errs []error
		for i, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Errorf("items[%d]: not an object", i))
				continue
			}
			u, err := toObject(im)
			if err != nil {
				errs = append(errs, fmt.Errorf("items[%d]: %w", i, err))
				continue
			}
			out = append(out, u)
		}
		return out, errs
	}
	u, err := toObject(m)
	if err != nil {
		return nil, []error{err}
	}
	return []*unstructured.Unstructured{u}, nil
}

func toObject(m map[string]any) (*unstructured.Unstructured, error) {
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	switch {
	case apiVersion == "" && kind == "":
		return nil, errors.New("missing apiVersion and kind")
	case apiVersion == "":
		return nil, fmt.Errorf("%s: missing apiVersion", kind)
	case kind == "":
		return nil, fmt.Errorf("missing kind (apiVersion %s)", apiVersion)
	}
	if md, ok := m["metadata"]; ok {
		if _, isMap := md.(map[string]any); !isMap {
			return nil, fmt.Errorf("%s: metadata must be a mapping", kind)
		}
	}
	u := &unstructured.Unstructured{Object: m}
	for _, f := range []string{"labels", "annotations"} {
		if _, _, err := unstructured.NestedStringMap(m, "metadata", f); err != nil {
			return nil, fmt.Errorf("%s %q: metadata.%s must map strings to strings", kind, u.GetName(), f)
		}
	}
	if ns, ok, _ := unstructured.NestedFieldNoCopy(m, "metadata", "namespace"); ok {
		if _, isStr := ns.(string); !isStr && ns != nil {
			return nil, fmt.Errorf("%s: metadata.namespace must be a string", kind)
		}
	}
	name, ok, _ := unstructured.NestedFieldNoCopy(m, "metadata", "name")
	if s, isStr := name.(string); !ok || !isStr || strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s: metadata.name is required", kind)
	}
	return u, nil
}

// serverOwned are metadata fields the server sets; a leftover
// resourceVersion would turn apply into an optimistic-concurrency conflict.
var serverOwned = []string{"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation",
	"selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}

// stamp strips server-owned fields and merges the tracking metadata into the
// user's (Brokkr keys win; user keys are kept).
func stamp(u *unstructured.Unstructured, do stack.DeploymentObject, agentID uuid.UUID) {
	delete(u.Object, "status")
	if md, ok := u.Object["metadata"].(map[string]any); ok {
		for _, f := range serverOwned {
			delete(md, f)
		}
	}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationStack] = do.StackID.String()
	ann[AnnotationChecksum] = do.YAMLChecksum
	ann[AnnotationDeploymentObjectID] = do.ID.String()
	ann[AnnotationOwnerID] = agentID.String()
	u.SetAnnotations(ann)
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelStack] = do.StackID.String()
	u.SetLabels(labels)
}

// normalize converts a YAML-decoded value into the JSON-compatible types
// unstructured objects require (map[string]any, []any, string, int64,
// float64, bool, nil), rejecting what JSON cannot carry.
func normalize(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int64:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint:
		return uintValue(uint64(x), path)
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return uintValue(x, path)
	case float32:
		return floatValue(float64(x), path)
	case float64:
		return floatValue(x, path)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case []byte:
		return string(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		vals := map[string]any{}
		for k, e := range x {
			ks := fmt.Sprint(k)
			if _, dup := vals[ks]; dup {
				return nil, fmt.Errorf("%s: duplicate key %q", pathOrRoot(path), ks)
			}
			keys = append(keys, ks)
			vals[ks] = e
		}
		sort.Strings(keys)
		for _, k := range keys {
			n, err := normalize(vals[k], path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s: unsupported value of type %T", pathOrRoot(path), v)
	}
}

func uintValue(x uint64, path string) (any, error) {
	if x > math.MaxInt64 {
		return nil, fmt.Errorf("%s: integer %d is too large", pathOrRoot(path), x)
	}
	return int64(x), nil
}

func floatValue(f float64, path string) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s: %v cannot be represented in JSON", pathOrRoot(path), f)
	}
	return f, nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "document"
	}
	return strings.TrimPrefix(p, ".")
}
