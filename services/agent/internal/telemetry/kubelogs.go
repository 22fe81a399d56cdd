package telemetry

import (
	"context"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeLogs is the LogSource of a real cluster: GET
// /api/v1/namespaces/{ns}/pods/{pod}/log with follow, timestamps, container
// and sinceTime (RBAC: pods/log get).
type KubeLogs struct {
	Client kubernetes.Interface
}

// Stream implements LogSource.
func (k KubeLogs) Stream(ctx context.Context, namespace, pod, container string, since *time.Time) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Follow: true, Timestamps: true, Container: container}
	if since != nil {
		t := metav1.NewTime(*since)
		opts.SinceTime = &t
	}
	return k.Client.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}
