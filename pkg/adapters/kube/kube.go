// Package kube is Brokkr's client-go adapter: a dynamic client for
// server-side apply and dry-run, a metadata client for cheap listing and
// pruning, cached discovery with a RESTMapper that is reset after CRDs are
// applied, and the classification of API errors into retryable and
// permanent ones.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager for deployment
// objects (the original's "brokkr-controller").
const FieldManager = "brokkr-controller"

// DefaultNamespace receives namespaced objects that name no namespace, as in
// the original (not the agent's own namespace).
const DefaultNamespace = "default"

// ErrNoConfig means neither the kubeconfig nor the in-cluster configuration
// could be loaded.
var ErrNoConfig = errors.New("kube: no usable Kubernetes configuration")

// LoadRESTConfig returns the client configuration: the kubeconfig at path
// when that file exists; otherwise the in-cluster configuration; and, when
// path is empty and the process is not in a cluster, the standard kubeconfig
// loading rules ($KUBECONFIG, ~/.kube/config), which is handy in
// development. A path that does not exist falls back to in-cluster, as the
// original does.
func LoadRESTConfig(path string) (*rest.Config, error) {
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			cfg, err := clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				return nil, fmt.Errorf("kube: kubeconfig %s: %w", path, err)
			}
			return cfg, nil
		}
	}
	cfg, inErr := rest.InClusterConfig()
	if inErr == nil {
		return cfg, nil
	}
	if path == "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
		if cfg, err := cc.ClientConfig(); err == nil {
			return cfg, nil
		}
	}
	if path != "" {
		return nil, fmt.Errorf("%w: kubeconfig %s does not exist and in-cluster configuration failed: %v", ErrNoConfig, path, inErr)
	}
	return nil, fmt.Errorf("%w: in-cluster configuration failed: %v", ErrNoConfig, inErr)
}

// Options tune New.
type Options struct {
	// QPS and Burst raise client-go's client-side rate limit (default 5/10,
	// far too low to apply a thousand objects); 0 means 50/100.
	QPS   float32
	Burst int
	// Timeout bounds each request; 0 means 60 s.
	Timeout time.Duration
	// UserAgent names the client in the apiserver's audit log.
	UserAgent string
	// Logger receives the apiserver's warning headers (deprecated APIs) at
	// debug level instead of klog's stderr; nil discards them.
	Logger *slog.Logger
}

type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if w.log != nil && code == 299 && text != "" {
		w.log.Debug("kubernetes API warning", "warning", text)
	}
}

// Client talks to one cluster.
type Client struct {
	cfg       *rest.Config
	Dynamic   dynamic.Interface
	Metadata  metadata.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper

	mu        sync.Mutex
	listable  []Resource // cached result of Listable
	listGen   uint64     // bumped by Reset; invalidates listable
	cachedGen uint64
}

// New builds a client from cfg (which it copies).
func New(cfg *rest.Config, opts Options) (*Client, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = opts.QPS, opts.Burst
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	c.Timeout = opts.Timeout
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if opts.UserAgent != "" {
		c.UserAgent = opts.UserAgent
	}
	c.WarningHandler = warningLogger{log: opts.Logger}
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kube: discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kube: dynamic client: %w", err)
	}
	md, err := metadata.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kube: metadata client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	return &Client{
		cfg:       c,
		Dynamic:   dyn,
		Metadata:  md,
		discovery: cached,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(cached),
	}, nil
}

// DynamicClient is the dynamic client (the Dynamic field) as a method, so
// consumers can ask for it through an interface they declare and fake.
func (c *Client) DynamicClient() dynamic.Interface { return c.Dynamic }

// MetadataClient is the metadata client (the Metadata field) as a method,
// for the same reason.
func (c *Client) MetadataClient() metadata.Interface { return c.Metadata }

// Config returns the client's REST configuration (a copy).
func (c *Client) Config() *rest.Config { return rest.CopyConfig(c.cfg) }

// ServerVersion calls GET /version, which needs no RBAC; it doubles as the
// connectivity check and the readiness probe.
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	body, err := c.discovery.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("kube: decoding /version: %w", err)
	}
	return &info, nil
}

// Reset forgets cached discovery, the RESTMapper and the list of listable
// resources. Call it after CRDs were applied.
func (c *Client) Reset() {
	c.mapper.Reset() // also invalidates the cached discovery client
	c.mu.Lock()
	c.listGen++
	c.mu.Unlock()
}

// Mapping resolves a group/version/kind to its resource and scope. A kind the
// cached discovery does not know triggers one reset and a second attempt, so
// a CRD installed by someone else is found without a restart.
func (c *Client) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && meta.IsNoMatchError(err) {
		c.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, &UnresolvedKindError{GVK: gvk, Err: err}
	}
	return m, nil
}

// UnresolvedKindError means the cluster serves no resource for a kind.
type UnresolvedKindError struct {
	GVK schema.GroupVersionKind
	Err error
}

func (e *UnresolvedKindError) Error() string {
	gv := e.GVK.GroupVersion().String()
	return fmt.Sprintf("unable to resolve kind %q in %q: the cluster serves no such resource", e.GVK.Kind, gv)
}

func (e *UnresolvedKindError) Unwrap() error { return e.Err }

// Resource is one listable and deletable API resource.
type Resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// duplicateResources are served under two groups for the same objects; the
// first name listed is the one kept.
var duplicateResources = map[schema.GroupResource]bool{
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// Listable returns the preferred version of every resource that supports
// list and delete, without subresources and duplicates. The result is cached
// until Reset. A partial discovery failure (an aggregated API being down)
// yields the resources that were discovered, never an error.
func (c *Client) Listable(ctx context.Context) ([]Resource, error) {
	c.mu.Lock()
	if c.listable != nil && c.cachedGen == c.listGen {
		out := c.listable
		c.mu.Unlock()
		return out, nil
	}
	gen := c.listGen
	c.mu.Unlock()

	lists, err := discovery.ServerPreferredResources(c.discovery)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("kube: discovery: %w", err)
	}
	partial := err != nil
	lists = discovery.FilteredBy(discovery.SupportsAllVerbs{Verbs: []string{"list", "delete"}}, lists)
	var out []Resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if duplicateResources[schema.GroupResource{Group: gv.Group, Resource: r.Name}] {
				continue
			}
			out = append(out, Resource{GVR: gv.WithResource(r.Name), Kind: r.Kind, Namespaced: r.Namespaced})
		}
	}
	if out == nil {
		out = []Resource{}
	}
	c.mu.Lock()
	// A partial answer is used but not cached, so the missing groups are
	// tried again next time.
	if !partial && c.listGen == gen {
		c.listable, c.cachedGen = out, gen
	}
	c.mu.Unlock()
	return out, nil
}
