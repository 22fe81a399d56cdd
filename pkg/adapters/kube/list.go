package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Item is the metadata of one listed object.
type Item struct {
	Resource        Resource
	Namespace       string
	Name            string
	Labels          map[string]string
	Annotations     map[string]string
	OwnerReferences []metav1.OwnerReference
	Terminating     bool
}

// SkippedError records a resource type that could not be listed (403 under
// a narrow RBAC, 404/405 for an API that went away): it is skipped, not
// fatal.
type SkippedError struct {
	Resource Resource
	Err      error
}

func (e SkippedError) Error() string {
	return fmt.Sprintf("listing %s skipped: %v", e.Resource.GVR.String(), e.Err)
}

// ListMetadata lists, cluster-wide and with the server-side label selector,
// the metadata of every object of the given resources. Types the caller may
// not list (403) or that no longer exist (404, 405) are reported in skipped;
// other errors abort.
func (c *Client) ListMetadata(ctx context.Context, resources []Resource, selector string) (items []Item, skipped []SkippedError, err error) {
	for _, r := range resources {
		opts := metav1.ListOptions{LabelSelector: selector}
		for {
			list, err := c.Metadata.Resource(r.GVR).List(ctx, opts)
			if err != nil {
				if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
					skipped = append(skipped, SkippedError{Resource: r, Err: err})
					break
				}
				return nil, skipped, fmt.Errorf("listing %s: %w", r.GVR.String(), err)
			}
			for i := range list.Items {
				o := &list.Items[i]
				items = append(items, Item{
					Resource: r, Namespace: o.Namespace, Name: o.Name,
					Labels: o.Labels, Annotations: o.Annotations,
					OwnerReferences: o.OwnerReferences, Terminating: o.DeletionTimestamp != nil,
				})
			}
			if list.Continue == "" {
				break
			}
			opts.Continue = list.Continue
		}
	}
	return items, skipped, nil
}
