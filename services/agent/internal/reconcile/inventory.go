package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Ref names one object the agent applied for a stack.
type Ref struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf names an applied object. Call it after kube.Client.Target (or
// Apply) placed the object in its namespace.
func RefOf(u *unstructured.Unstructured) Ref {
	gvk := u.GroupVersionKind()
	return Ref{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// GVK is the ref's group, version and kind.
func (r Ref) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// key identifies the object whatever version it was applied with, so a
// stack moving a kind from v1beta1 to v1 does not prune what it still
// wants.
func (r Ref) key() string { return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name }

func (r Ref) String() string {
	if r.Namespace != "" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// Inventory is the set of objects applied for one stack.
type Inventory map[string]Ref

// NewInventory returns the set of refs.
func NewInventory(refs ...Ref) Inventory {
	inv := Inventory{}
	inv.Add(refs...)
	return inv
}

// Add puts refs in the set; a ref already there takes the newer version.
func (inv Inventory) Add(refs ...Ref) {
	for _, r := range refs {
		inv[r.key()] = r
	}
}

// Has reports whether the set holds the object, in any version.
func (inv Inventory) Has(r Ref) bool { _, ok := inv[r.key()]; return ok }

// Minus returns the refs of inv that other does not hold: what to prune.
func (inv Inventory) Minus(other Inventory) []Ref {
	var out []Ref
	for k, r := range inv {
		if _, ok := other[k]; !ok {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Ref) int { return strings.Compare(a.key(), b.key()) })
	return out
}

// Refs returns the refs, sorted.
func (inv Inventory) Refs() []Ref {
	return slices.SortedFunc(maps.Values(inv), func(a, b Ref) int { return strings.Compare(a.key(), b.key()) })
}

// Clone copies the set.
func (inv Inventory) Clone() Inventory { return maps.Clone(inv) }

// InventoryStore keeps each stack's inventory. Load reports found=false
// for a stack that has none yet (never reconciled by this agent, or by an
// agent version before inventories): the Reconciler then seeds it once from
// a label-selected scan of the cluster.
type InventoryStore interface {
	Load(ctx context.Context, stackID uuid.UUID) (inv Inventory, found bool, err error)
	Save(ctx context.Context, stackID uuid.UUID, inv Inventory) error
	Delete(ctx context.Context, stackID uuid.UUID) error
}

// MemoryInventory keeps inventories in memory. A restart forgets them, so
// the next reconcile of each stack scans the cluster again; it is for tests
// and tools, the agent uses ConfigMapInventory.
type MemoryInventory struct {
	mu   sync.Mutex
	invs map[uuid.UUID]Inventory
}

// NewMemoryInventory returns an empty store.
func NewMemoryInventory() *MemoryInventory { return &MemoryInventory{invs: map[uuid.UUID]Inventory{}} }

// Load implements InventoryStore.
func (m *MemoryInventory) Load(_ context.Context, id uuid.UUID) (Inventory, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invs[id]
	return inv.Clone(), ok, nil
}

// Save implements InventoryStore.
func (m *MemoryInventory) Save(_ context.Context, id uuid.UUID, inv Inventory) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invs[id] = inv.Clone()
	return nil
}

// Delete implements InventoryStore.
func (m *MemoryInventory) Delete(_ context.Context, id uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.invs, id)
	return nil
}

// Inventory ConfigMaps: one per agent and stack in the agent's namespace,
// recognisable by these labels. They never carry the stack label, so
// pruning, health and diagnostics do not see them.
const (
	LabelInventoryAgent = "brokkr.io/inventory-agent"
	LabelInventoryStack = "brokkr.io/inventory-stack"
	inventoryKey        = "objects.json"
	inventoryManager    = "brokkr-agent-inventory"
)

var configMapResource = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// ConfigMapInventory stores each stack's inventory in a ConfigMap
// brokkr-inventory-<agent id>-<stack id> in the agent's namespace, so it
// survives restarts (services/agent/README.md#inventory). It needs get,
// create, patch and delete on configmaps in that namespace and nothing
// else (services/agent/rbac.yaml, Role brokkr-agent-inventory).
type ConfigMapInventory struct {
	cms     dynamic.ResourceInterface
	agentID uuid.UUID
	ns      string
}

// NewConfigMapInventory returns the store of agentID in namespace ns.
func NewConfigMapInventory(dyn dynamic.Interface, ns string, agentID uuid.UUID) *ConfigMapInventory {
	return &ConfigMapInventory{cms: dyn.Resource(configMapResource).Namespace(ns), agentID: agentID, ns: ns}
}

// Name is the ConfigMap holding the stack's inventory.
func (c *ConfigMapInventory) Name(stackID uuid.UUID) string {
	return "brokkr-inventory-" + c.agentID.String() + "-" + stackID.String()
}

// Load implements InventoryStore.
func (c *ConfigMapInventory) Load(ctx context.Context, id uuid.UUID) (Inventory, bool, error) {
	cm, err := c.cms.Get(ctx, c.Name(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the inventory %s/%s: %w", c.ns, c.Name(id), err)
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", inventoryKey)
	var refs []Ref
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &refs); err != nil {
			// Someone edited it by hand: better one rescan than a lost
			// object.
			return nil, false, nil
		}
	}
	return NewInventory(refs...), true, nil
}

// Save implements InventoryStore (server-side apply: one PATCH, creating
// the ConfigMap when needed).
func (c *ConfigMapInventory) Save(ctx context.Context, id uuid.UUID, inv Inventory) error {
	refs := inv.Refs()
	if refs == nil {
		refs = []Ref{}
	}
	raw, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      c.Name(id),
			"namespace": c.ns,
			"labels": map[string]any{
				"app.kubernetes.io/managed-by": "brokkr-agent",
				LabelInventoryAgent:            c.agentID.String(),
				LabelInventoryStack:            id.String(),
			},
		},
		"data": map[string]any{inventoryKey: string(raw)},
	}}
	if _, err := c.cms.Apply(ctx, c.Name(id), u, metav1.ApplyOptions{FieldManager: inventoryManager, Force: true}); err != nil {
		return fmt.Errorf("writing the inventory %s/%s: %w", c.ns, c.Name(id), err)
	}
	return nil
}

// Delete implements InventoryStore; a missing ConfigMap is no error.
func (c *ConfigMapInventory) Delete(ctx context.Context, id uuid.UUID) error {
	err := c.cms.Delete(ctx, c.Name(id), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the inventory %s/%s: %w", c.ns, c.Name(id), err)
	}
	return nil
}
