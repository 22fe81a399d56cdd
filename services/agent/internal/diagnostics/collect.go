// Package diagnostics answers on-demand diagnostic requests
// (docs/compatibility.md#diagnostics-scope): the agent polls its pending
// requests, claims each atomically, collects pod statuses, the events of the involved objects
// and container log tails in the namespaces of the deployment object, and
// submits the result through the outbox.
package diagnostics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
)

// Condition is one pod condition.
type Condition struct {
	ConditionType string  `json:"condition_type"`
	Status        string  `json:"status"`
	Reason        *string `json:"reason"`
	Message       *string `json:"message"`
}

// Container is one container status. State is running, waiting,
// terminated or unknown (the documented lower case).
type Container struct {
	Name         string  `json:"name"`
	Ready        bool    `json:"ready"`
	RestartCount int32   `json:"restart_count"`
	State        string  `json:"state"`
	StateReason  *string `json:"state_reason"`
	StateMessage *string `json:"state_message"`
	// LastStateReason is why the previous run ended (e.g. OOMKilled).
	LastStateReason *string `json:"last_state_reason,omitempty"`
}

// PodStatus is one entry of pod_statuses.
type PodStatus struct {
	Name           string      `json:"name"`
	Namespace      string      `json:"namespace"`
	Phase          string      `json:"phase"`
	NodeName       string      `json:"node_name,omitempty"`
	Conditions     []Condition `json:"conditions"`
	Containers     []Container `json:"containers"`
	InitContainers []Container `json:"init_containers,omitempty"`
}

// Event is one entry of events: the documented fields, plus the
// original's involved_object (the name) for its clients.
type Event struct {
	EventType          *string `json:"event_type"`
	Reason             *string `json:"reason"`
	Message            *string `json:"message"`
	InvolvedObjectKind *string `json:"involved_object_kind"`
	InvolvedObjectName *string `json:"involved_object_name"`
	InvolvedObject     string  `json:"involved_object"`
	Namespace          string  `json:"namespace"`
	Count              *int32  `json:"count"`
	FirstTimestamp     *string `json:"first_timestamp"`
	LastTimestamp      *string `json:"last_timestamp"`
}

// Result is what Collect gathered.
type Result struct {
	PodStatuses []PodStatus
	Events      []Event
	// LogTails maps "pod/container" to its last lines, or to "Error: …"
	// when that container's log could not be read (there is no kubelet
	// behind kwok, for one).
	LogTails    map[string]string
	CollectedAt time.Time
}

// Collector gathers diagnostics for a deployment object.
type Collector struct {
	In *inspect.Inspector
	// LogLines is the tail length per container (default 100).
	LogLines int
	// LogTimeout bounds reading one container's log (default 10 s).
	LogTimeout time.Duration
	// MaxEvents keeps the newest events (default 50, as the original).
	MaxEvents int
	// LogConcurrency bounds log reads at once (default 4).
	LogConcurrency int
}

// Collect gathers pod statuses, events and log tails for do. Pods are those
// of its workloads (through their selectors) and its bare Pods; events are
// those of its objects, of those Pods and of their owners (ReplicaSets,
// Jobs), in the namespaces of the deployment object. An error means nothing
// useful could be collected; a single container's log failing does not.
func (c *Collector) Collect(ctx context.Context, do stack.DeploymentObject) (Result, error) {
	res := Result{LogTails: map[string]string{}}
	plan, err := c.In.Resolve(do)
	if err != nil {
		return res, fmt.Errorf("reading the deployment object: %w", err)
	}
	live := c.In.Fetch(ctx, plan)
	pods := c.In.Pods(ctx, live)
	if len(pods.Pods) == 0 && len(pods.Errs) > 0 {
		return res, fmt.Errorf("listing pods: %w", pods.Errs[0])
	}
	for i := range pods.Pods {
		res.PodStatuses = append(res.PodStatuses, podStatus(&pods.Pods[i]))
	}
	if res.PodStatuses == nil {
		res.PodStatuses = []PodStatus{}
	}

	involved := map[string]bool{} // kind/namespace/name
	for _, t := range plan.Targets {
		involved[t.Kind+"/"+t.Namespace+"/"+t.Name] = true
	}
	for _, p := range pods.Pods {
		involved["Pod/"+p.Namespace+"/"+p.Name] = true
		for _, o := range p.OwnerReferences {
			involved[o.Kind+"/"+p.Namespace+"/"+o.Name] = true
		}
	}
	events, err := c.events(ctx, plan.Namespaces(), involved)
	if err != nil {
		return res, err
	}
	res.Events = events

	c.logs(ctx, pods.Pods, res.LogTails)
	res.CollectedAt = time.Now().UTC()
	return res, nil
}

func (c *Collector) events(ctx context.Context, namespaces []string, involved map[string]bool) ([]Event, error) {
	type item struct {
		ev   Event
		last time.Time
	}
	var items []item
	var firstErr error
	listed := 0
	for _, ns := range namespaces {
		opts := metav1.ListOptions{}
		for {
			list, err := c.In.Typed.CoreV1().Events(ns).List(ctx, opts)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("listing events in %s: %w", ns, err)
				}
				break
			}
			listed++
			for i := range list.Items {
				e := &list.Items[i]
				obj := e.InvolvedObject
				objNS := obj.Namespace
				if objNS == "" {
					objNS = e.Namespace
				}
				// Cluster-scoped objects (a Namespace) report events in
				// "default" with an empty involved namespace.
				if !involved[obj.Kind+"/"+objNS+"/"+obj.Name] && !involved[obj.Kind+"//"+obj.Name] {
					continue
				}
				items = append(items, item{ev: toEvent(e), last: lastSeen(e)})
			}
			if list.Continue == "" {
				break
			}
			opts.Continue = list.Continue
		}
	}
	if listed == 0 && firstErr != nil {
		return nil, firstErr
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].last.After(items[j].last) })
	limit := c.MaxEvents
	if limit <= 0 {
		limit = 50
	}
	out := make([]Event, 0, min(len(items), limit))
	for i := 0; i < len(items) && i < limit; i++ {
		out = append(out, items[i].ev)
	}
	return out, nil
}

func lastSeen(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ts(t metav1.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func toEvent(e *corev1.Event) Event {
	name := e.InvolvedObject.Name
	if name == "" {
		name = "unknown"
	}
	ev := Event{EventType: str(e.Type), Reason: str(e.Reason), Message: str(e.Message),
		InvolvedObjectKind: str(e.InvolvedObject.Kind), InvolvedObjectName: str(e.InvolvedObject.Name),
		InvolvedObject: name, Namespace: e.Namespace,
		FirstTimestamp: ts(e.FirstTimestamp), LastTimestamp: ts(e.LastTimestamp)}
	if ev.FirstTimestamp == nil && !e.EventTime.IsZero() {
		s := e.EventTime.UTC().Format(time.RFC3339)
		ev.FirstTimestamp = &s
	}
	if ev.LastTimestamp == nil {
		if t := lastSeen(e); !t.IsZero() {
			s := t.UTC().Format(time.RFC3339)
			ev.LastTimestamp = &s
		}
	}
	count := e.Count
	if e.Series != nil && e.Series.Count > count {
		count = e.Series.Count
	}
	if count > 0 {
		ev.Count = &count
	}
	return ev
}

func podStatus(p *corev1.Pod) PodStatus {
	phase := string(p.Status.Phase)
	if phase == "" {
		phase = "Unknown"
	}
	ps := PodStatus{Name: p.Name, Namespace: p.Namespace, Phase: phase, NodeName: p.Spec.NodeName,
		Conditions: []Condition{}, Containers: []Container{}}
	for _, c := range p.Status.Conditions {
		ps.Conditions = append(ps.Conditions, Condition{ConditionType: string(c.Type), Status: string(c.Status),
			Reason: str(c.Reason), Message: str(c.Message)})
	}
	for _, cs := range p.Status.ContainerStatuses {
		ps.Containers = append(ps.Containers, container(cs))
	}
	for _, cs := range p.Status.InitContainerStatuses {
		ps.InitContainers = append(ps.InitContainers, container(cs))
	}
	return ps
}

func container(cs corev1.ContainerStatus) Container {
	c := Container{Name: cs.Name, Ready: cs.Ready, RestartCount: cs.RestartCount, State: "unknown"}
	switch s := cs.State; {
	case s.Running != nil:
		c.State = "running"
		c.StateMessage = str("Started at " + s.Running.StartedAt.UTC().Format(time.RFC3339))
	case s.Waiting != nil:
		c.State, c.StateReason, c.StateMessage = "waiting", str(s.Waiting.Reason), str(s.Waiting.Message)
	case s.Terminated != nil:
		c.State, c.StateReason, c.StateMessage = "terminated", str(s.Terminated.Reason), str(s.Terminated.Message)
	}
	if t := cs.LastTerminationState.Terminated; t != nil {
		c.LastStateReason = str(t.Reason)
	}
	return c
}

// logs reads the tail of every main container's log, a few at a time, each
// within LogTimeout. A failure is stored as "Error: …" for that container.
func (c *Collector) logs(ctx context.Context, pods []corev1.Pod, out map[string]string) {
	lines := int64(c.LogLines)
	if lines <= 0 {
		lines = 100
	}
	timeout := c.LogTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conc := c.LogConcurrency
	if conc <= 0 {
		conc = 4
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for _, p := range pods {
		for _, ctr := range p.Spec.Containers {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				text, err := c.tail(ctx, p.Namespace, p.Name, ctr.Name, lines, timeout)
				if err != nil {
					text = "Error: " + err.Error()
				}
				mu.Lock()
				out[p.Name+"/"+ctr.Name] = text
				mu.Unlock()
			})
		}
	}
	wg.Wait()
}

// maxLogBytes caps one container's tail (long lines).
const maxLogBytes = 256 << 10

func (c *Collector) tail(ctx context.Context, ns, pod, ctr string, lines int64, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	limit := int64(maxLogBytes)
	rc, err := c.In.Typed.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: ctr, TailLines: &lines, LimitBytes: &limit}).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rc, maxLogBytes)); err != nil && buf.Len() == 0 {
		return "", err
	}
	return strings.ToValidUTF8(buf.String(), "\uFFFD"), nil
}
