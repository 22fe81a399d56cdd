// Package health is the agent's deployment health monitor
// (docs/compatibility.md#deployment-health): for each applied deployment object
// it reads the live objects and the Pods of their workloads, computes one
// status as a severity maximum, and reports it to the broker on an interval and
// as soon as it changes.
package health

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	domainhealth "github.com/brokkr-go/brokkr/pkg/domain/health"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
)

// Resource is one entry of summary.resources: an object or Pod with an
// issue (healthy objects are not listed, so the summary stays small).
type Resource struct {
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	Namespace string  `json:"namespace"`
	Ready     bool    `json:"ready"`
	Message   *string `json:"message"`
}

// Summary is the health summary the broker stores as a JSON object.
type Summary struct {
	PodsReady  int        `json:"pods_ready"`
	PodsTotal  int        `json:"pods_total"`
	Conditions []string   `json:"conditions"`
	Resources  []Resource `json:"resources,omitempty"`
}

// WaitingReasons are the container waiting reasons that make a deployment
// object degraded (the original's list plus CreateContainerError and the
// lifecycle hook errors).
var WaitingReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"InvalidImageName":           true,
	"RunContainerError":          true,
	"ContainerCannotRun":         true,
	"PreStartHookError":          true,
	"PostStartHookError":         true,
}

// terminatedReasons degrade a running Pod when a container ended this way.
var terminatedReasons = map[string]bool{"OOMKilled": true, "Error": true, "ContainerCannotRun": true}

var rank = map[string]int{domainhealth.Unknown: 0, domainhealth.Healthy: 1, domainhealth.Degraded: 2, domainhealth.Failing: 3}

// evaluation accumulates a status as the maximum severity seen: failing >
// degraded > healthy > unknown. Nothing seen at all is unknown.
type evaluation struct {
	status     string
	conditions map[string]bool
	summary    Summary
}

func (e *evaluation) raise(s string) {
	if e.status == "" || rank[s] > rank[e.status] {
		e.status = s
	}
}

func (e *evaluation) issue(s, condition string, r Resource) {
	e.raise(s)
	if condition != "" {
		e.conditions[condition] = true
	}
	if r.Kind != "" {
		e.summary.Resources = append(e.summary.Resources, r)
	}
}

func msg(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Evaluate computes the health of one deployment object from its live
// objects and Pods.
//
// Pods: a container waiting with a reason in WaitingReasons, a running Pod
// whose container terminated OOMKilled/Error/ContainerCannotRun (or was
// OOMKilled last time), an unschedulable Pod → degraded; phase Failed →
// failing (PodFailed); phase Unknown → unknown; any other Pod → healthy,
// ready or not, as in the original.
//
// Other objects, through kstatus: Current → healthy; Failed (a Deployment
// past its progress deadline, a failed Job, a CRD whose names were not
// accepted) → failing; a workload with ReplicaFailure → degraded; an
// applied object that is gone → degraded (ResourceMissing); InProgress,
// Terminating and read errors add nothing above unknown. A workload still
// in progress with no Pod at all is listed as a resource.
func Evaluate(live []inspect.Live, pods inspect.PodSet) (string, Summary) {
	e := &evaluation{conditions: map[string]bool{}}
	for _, l := range live {
		t := l.Target
		res := Resource{Kind: t.Kind, Name: t.Name, Namespace: t.Namespace}
		switch {
		case l.Err != nil:
			res.Message = msg(l.Err.Error())
			e.issue(domainhealth.Unknown, "", res)
		case l.Missing:
			res.Message = msg("applied object not found in the cluster")
			e.issue(domainhealth.Degraded, "ResourceMissing", res)
		case inspect.IsPod(t):
			// Judged below with the other Pods.
		default:
			e.object(l, res, pods)
		}
	}
	for _, err := range pods.Errs {
		e.issue(domainhealth.Unknown, "", Resource{Kind: "Pod", Message: msg(err.Error())})
	}
	for i := range pods.Pods {
		e.pod(&pods.Pods[i])
	}
	status := e.status
	if status == "" {
		status = domainhealth.Unknown
	}
	e.summary.Conditions = make([]string, 0, len(e.conditions))
	for c := range e.conditions {
		e.summary.Conditions = append(e.summary.Conditions, c)
	}
	sort.Strings(e.summary.Conditions)
	return status, e.summary
}

func (e *evaluation) object(l inspect.Live, res Resource, pods inspect.PodSet) {
	u := l.Object
	if l.MetadataOnly {
		e.raise(domainhealth.Healthy) // it exists; there is nothing else to judge
		return
	}
	r, err := status.Compute(u)
	if err != nil {
		res.Message = msg(err.Error())
		e.issue(domainhealth.Unknown, "", res)
		return
	}
	if inspect.IsWorkload(l.Target) {
		if c, ok := replicaFailure(u.Object); ok {
			res.Message = msg(c)
			e.issue(domainhealth.Degraded, "ReplicaFailure", res)
			return
		}
	}
	switch r.Status {
	case status.CurrentStatus:
		e.raise(domainhealth.Healthy)
	case status.FailedStatus:
		reason := "Failed"
		for _, c := range r.Conditions {
			if c.Type == status.ConditionStalled && c.Reason != "" {
				reason = c.Reason
			}
		}
		res.Message = msg(r.Message)
		e.issue(domainhealth.Failing, reason, res)
	default: // InProgress, Terminating, Unknown
		if inspect.IsWorkload(l.Target) && pods.ByWorkload[l.Target.Key()] == 0 {
			res.Message = msg(fmt.Sprintf("%s: %s; no pods found", r.Status, r.Message))
			e.issue(domainhealth.Unknown, "", res)
		}
	}
}

// replicaFailure reports a ReplicaFailure=True condition (e.g. pods refused
// by a quota), which kstatus counts as merely in progress.
func replicaFailure(obj map[string]any) (string, bool) {
	st, _ := obj["status"].(map[string]any)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "ReplicaFailure" && m["status"] == "True" {
			reason, _ := m["reason"].(string)
			message, _ := m["message"].(string)
			return strings.TrimSpace(reason + ": " + message), true
		}
	}
	return "", false
}

func (e *evaluation) pod(p *corev1.Pod) {
	e.summary.PodsTotal++
	ready := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if ready {
		e.summary.PodsReady++
	}
	res := func(message string) Resource {
		return Resource{Kind: "Pod", Name: p.Name, Namespace: p.Namespace, Ready: ready, Message: msg(message)}
	}
	status := domainhealth.Healthy
	for _, cs := range p.Status.InitContainerStatuses {
		if w := cs.State.Waiting; w != nil && WaitingReasons[w.Reason] {
			e.issue(domainhealth.Degraded, "InitContainer:"+w.Reason, res(containerMessage(cs.Name, w.Reason, w.Message)))
			status = domainhealth.Degraded
		}
	}
	running := p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && WaitingReasons[cs.State.Waiting.Reason]:
			w := cs.State.Waiting
			e.issue(domainhealth.Degraded, w.Reason, res(containerMessage(cs.Name, w.Reason, w.Message)))
			status = domainhealth.Degraded
		case running && cs.State.Terminated != nil && terminatedReasons[cs.State.Terminated.Reason]:
			t := cs.State.Terminated
			e.issue(domainhealth.Degraded, t.Reason, res(containerMessage(cs.Name, t.Reason, t.Message)))
			status = domainhealth.Degraded
		}
		if running && cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.Reason == "OOMKilled" &&
			(cs.State.Waiting == nil || !WaitingReasons[cs.State.Waiting.Reason]) {
			e.issue(domainhealth.Degraded, "OOMKilled", res(containerMessage(cs.Name, "OOMKilled", "last run was OOMKilled")))
			status = domainhealth.Degraded
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			e.issue(domainhealth.Degraded, "Unschedulable", res(c.Message))
			status = domainhealth.Degraded
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed:
		m := p.Status.Message
		if p.Status.Reason != "" {
			m = strings.TrimSpace(p.Status.Reason + ": " + m)
		}
		if m == "" {
			m = "pod failed"
		}
		e.issue(domainhealth.Failing, "PodFailed", res(m))
		return
	case corev1.PodUnknown:
		e.issue(domainhealth.Unknown, "", res("pod phase is Unknown"))
		return
	}
	e.raise(status)
}

func containerMessage(container, reason, message string) string {
	if message == "" {
		return fmt.Sprintf("container %s: %s", container, reason)
	}
	return fmt.Sprintf("container %s: %s: %s", container, reason, message)
}
