package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/telemetry"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

// scriptedLogs is the LogSource of this test: kube-apiserver has no
// kubelet, so no container log can be read. Each container's stream says
// one line, then stays open until the tail ends (as a followed log does).
type scriptedLogs struct{}

func (scriptedLogs) Stream(ctx context.Context, ns, pod, ctr string, since *time.Time) (io.ReadCloser, error) {
	r, w := io.Pipe()
	go func() {
		_, _ = w.Write([]byte(time.Now().UTC().Format(time.RFC3339Nano) + " hello from " + pod + "/" + ctr + "\n"))
		<-ctx.Done()
		_ = w.CloseWithError(ctx.Err())
	}()
	return r, nil
}

// TestTelemetryReachesTheBroker runs the agent (in this process, with the
// telemetry hook and a scripted LogSource) against the real api and auth
// and the local kube-apiserver: a Pod that opted in and a real Event about
// it end up in GET /stacks/{id}/logs and /events.
func TestTelemetryReachesTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	env := testenv.ForTest(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "telemetry-" + uuid.NewString()[:6]}, &st)
	ns := testenv.NewNamespace(t, env)
	src := scriptedLogs{}
	startAgentWith(t, b, cfg, "telemetry-agent", st.ID, []agent.Hook{telemetry.Hook(telemetry.Options{
		Logs: true, Events: true, MaxTails: 10, Namespace: ns, OwnerCacheCap: 100, Source: src})})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{
			telemetry.AnnotationStack: st.ID.String(), telemetry.AnnotationStreamLogs: "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	type logs struct {
		Lines []struct {
			Kind, Namespace, Pod, Container, Line string
		} `json:"lines"`
	}
	eventually(t, 90*time.Second, func() string {
		var got logs
		b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/logs", nil, &got)
		for _, l := range got.Lines {
			if l.Kind == "line" && l.Namespace == ns && l.Pod == "web" && l.Container == "app" && l.Line == "hello from web/app" {
				return ""
			}
		}
		return fmt.Sprintf("the pod's line is not in /logs: %+v", got.Lines)
	})

	// A real Event about the Pod, created once the agent's watch runs
	// (the line above proves it does).
	now := metav1.Now()
	if _, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.e2e"},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "web", UID: pod.UID},
		Reason:         "BackOff", Message: "Back-off restarting failed container", Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, func() string {
		var got struct {
			Events []struct {
				Reason         string `json:"reason"`
				EventType      string `json:"event_type"`
				InvolvedObject struct {
					Kind, Name, UID string
				} `json:"involved_object"`
			} `json:"events"`
		}
		b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/events", nil, &got)
		for _, e := range got.Events {
			if e.Reason == "BackOff" && e.EventType == "Warning" && e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == "web" &&
				e.InvolvedObject.UID == string(pod.UID) {
				return ""
			}
		}
		return fmt.Sprintf("the pod's event is not in /events: %+v", got.Events)
	})
}
