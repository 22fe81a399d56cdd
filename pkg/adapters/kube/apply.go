package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// ApplyOptions steer Apply.
type ApplyOptions struct {
	// FieldManager defaults to FieldManager ("brokkr-controller").
	FieldManager string
	// Force takes fields owned by other managers (the original always does).
	Force bool
	// DryRun validates and returns the would-be result without persisting
	// (dryRun=All).
	DryRun bool
}

// Target resolves where obj lives: its resource interface and mapping. A
// namespaced object without a namespace is placed in DefaultNamespace; a
// cluster-scoped object loses any namespace it carries. obj is updated
// accordingly.
func (c *Client) Target(obj *unstructured.Unstructured) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, nil, fmt.Errorf("object %q has no apiVersion/kind", obj.GetName())
	}
	m, err := c.Mapping(gvk)
	if err != nil {
		return nil, nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(DefaultNamespace)
		}
		return c.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), m, nil
	}
	if obj.GetNamespace() != "" {
		obj.SetNamespace("")
	}
	return c.Dynamic.Resource(m.Resource), m, nil
}

// Apply server-side applies obj and returns the resulting object (or, with
// DryRun, what it would be).
func (c *Client) Apply(ctx context.Context, obj *unstructured.Unstructured, opts ApplyOptions) (*unstructured.Unstructured, error) {
	ri, _, err := c.Target(obj)
	if err != nil {
		return nil, err
	}
	fm := opts.FieldManager
	if fm == "" {
		fm = FieldManager
	}
	ao := metav1.ApplyOptions{FieldManager: fm, Force: opts.Force}
	if opts.DryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Apply(ctx, obj.GetName(), obj, ao)
}

// Get reads the live version of obj (by kind, namespace and name).
func (c *Client) Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, _, err := c.Target(obj)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
}

// Exists reports whether obj exists in the cluster.
func (c *Client) Exists(ctx context.Context, obj *unstructured.Unstructured) (bool, error) {
	_, err := c.Get(ctx, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes one object with Background propagation (so a Job's pods
// go too). An object that is already gone counts as deleted.
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) error {
	bg := metav1.DeletePropagationBackground
	var ri dynamic.ResourceInterface = c.Dynamic.Resource(gvr)
	if namespace != "" {
		ri = c.Dynamic.Resource(gvr).Namespace(namespace)
	}
	err := ri.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// DeleteObject deletes obj by kind, namespace and name (404 is success).
func (c *Client) DeleteObject(ctx context.Context, obj *unstructured.Unstructured) error {
	_, m, err := c.Target(obj)
	if err != nil {
		return err
	}
	return c.Delete(ctx, m.Resource, obj.GetNamespace(), obj.GetName())
}

// CRDResource is the apiextensions resource of CustomResourceDefinitions.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WaitEstablished waits until every named CRD reports Established, then
// resets discovery and waits until the RESTMapper resolves each CRD's kind,
// so custom resources can be validated right after. It gives up at ctx's
// deadline (or after timeout when positive).
func (c *Client) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	if len(names) == 0 {
		return nil
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	var lastErr error
	var kinds []schema.GroupVersionKind
	for len(pending) > 0 {
		for name := range pending {
			crd, err := c.Dynamic.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				lastErr = err
				continue
			}
			if established(crd) {
				delete(pending, name)
				kinds = append(kinds, servedKinds(crd)...)
			} else {
				lastErr = fmt.Errorf("CustomResourceDefinition %s is not Established yet", name)
			}
		}
		if len(pending) == 0 {
			break
		}
		if err := lifecycle.Sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for CRDs %s: %w (last: %v)", joinKeys(pending), err, lastErr)
		}
	}
	c.Reset()
	for _, gvk := range kinds {
		for {
			if _, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				break
			} else if !meta.IsNoMatchError(err) {
				return err
			}
			if err := lifecycle.Sleep(ctx, 100*time.Millisecond); err != nil {
				return fmt.Errorf("waiting for discovery to serve %s: %w", gvk, err)
			}
			c.Reset()
		}
	}
	return nil
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func servedKinds(crd *unstructured.Unstructured) []schema.GroupVersionKind {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var out []schema.GroupVersionKind
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok || m["served"] != true {
			continue
		}
		if name, ok := m["name"].(string); ok {
			out = append(out, schema.GroupVersionKind{Group: group, Version: name, Kind: kind})
		}
	}
	return out
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return strings.Join(keys, ", ")
}
