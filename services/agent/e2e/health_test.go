package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/diagnostics"
	"github.com/brokkr-go/brokkr/services/agent/internal/health"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

var rbacOnce struct {
	sync.Once
	err error
}

// agentUserConfig applies services/agent/rbac.yaml, binds its ClusterRole
// (and, as the file documents for custom resources, a role for the test's
// custom group) to the testenv's non-admin user, and returns that user's
// configuration: the agent runs with exactly the documented permissions.
func agentUserConfig(t *testing.T, env *testenv.Env) *rest.Config {
	t.Helper()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	rbacOnce.Do(func() {
		rbacOnce.err = func() error {
			data, err := os.ReadFile("../rbac.yaml")
			if err != nil {
				return err
			}
			kc, err := kube.New(cfg, kube.Options{})
			if err != nil {
				return err
			}
			do := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: string(data)}
			plan, err := reconcile.Prepare(do, uuid.New())
			if err != nil {
				return err
			}
			ctx := context.Background()
			for _, o := range plan.All() {
				if _, err := kc.Apply(ctx, o.U, kube.ApplyOptions{FieldManager: "e2e", Force: true}); err != nil {
					return fmt.Errorf("%s: %w", o.Describe(), err)
				}
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			custom := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "brokkr-agent-custom-resources"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{"e2e.brokkr.io"}, Resources: []string{"*"},
					Verbs: []string{"get", "list", "create", "patch", "delete"}}}}
			if _, err := cs.RbacV1().ClusterRoles().Create(ctx, custom, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			for _, role := range []string{"brokkr-agent", "brokkr-agent-custom-resources"} {
				b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role + "-e2e-user"},
					RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
					Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: env.UserName}}}
				if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					return err
				}
			}
			inv := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "brokkr-agent-inventory-e2e-user", Namespace: "brokkr-system"},
				RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "brokkr-agent-inventory"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: env.UserName}}}
			if _, err := cs.RbacV1().RoleBindings("brokkr-system").Create(ctx, inv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			return nil
		}()
	})
	if rbacOnce.err != nil {
		t.Fatal(rbacOnce.err)
	}
	ucfg, err := env.UserRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	// RBAC is enforced from the informer cache: wait until the binding is
	// in effect.
	ucs, _ := kubernetes.NewForConfig(ucfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ucs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{Limit: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent role is not in effect: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ucfg
}

type agentRun struct {
	id  uuid.UUID
	pak string
}

// startAgent registers an agent, targets the stack and runs the agent in
// this process with the health and diagnostics hooks, against kcfg.
func startAgent(t *testing.T, b brokerEnv, kcfg *rest.Config, name string, stackID uuid.UUID) agentRun {
	t.Helper()
	return startAgentWith(t, b, kcfg, name, stackID, []agent.Hook{
		health.Hook(health.Options{Interval: 30 * time.Second, Debounce: 200 * time.Millisecond}),
		diagnostics.Hook(diagnostics.Options{Interval: 300 * time.Millisecond, LogLines: 10, LogTimeout: 3 * time.Second}),
	})
}

// startAgentWith is startAgent with other hooks.
func startAgentWith(t *testing.T, b brokerEnv, kcfg *rest.Config, name string, stackID uuid.UUID, hooks []agent.Hook) agentRun {
	t.Helper()
	created := registerAgent(t, b, name, stackID)
	set := agent.Settings{Agent: config.Defaults().Agent}
	set.BrokerURL, set.PAK = b.url, secret.String(created.pak)
	set.AgentName, set.ClusterName = name, "e2e-cluster"
	set.PollingInterval, set.MaxRetries = 1, 5
	set.OutboxDir = t.TempDir()
	set.TargetStateWaitSeconds = 5
	set.DriftCheckInterval = 0
	set.ShutdownGraceSeconds = 5
	bc, err := broker.New(set.BrokerURL, set.PAK, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := httpserver.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	a := agent.New(set, log, bc, func() (*kube.Client, error) { return kube.New(kcfg, kube.Options{}) },
		agent.NewMetrics(reg), reg, hooks)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	a.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})
	return created
}

// registerAgent registers an agent in cluster e2e-cluster and targets the
// stack.
func registerAgent(t *testing.T, b brokerEnv, name string, stackID uuid.UUID) agentRun {
	t.Helper()
	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	b.call(t, http.MethodPost, "/agents", map[string]string{"name": name, "cluster_name": "e2e-cluster"}, &created)
	b.call(t, http.MethodPost, "/agents/"+created.Agent.ID.String()+"/targets", map[string]any{"stack_id": stackID}, nil)
	return agentRun{id: created.Agent.ID, pak: created.InitialPAK}
}

// eventually polls fn until it returns "" (or fails the test with its last
// answer).
func eventually(t *testing.T, d time.Duration, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := fn()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func setPodStatus(t *testing.T, cs kubernetes.Interface, ns, selector string, mutate func(p *corev1.Pod) bool) {
	t.Helper()
	ctx := context.Background()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v (%d)", err, len(pods.Items))
	}
	for _, p := range pods.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !mutate(cur) {
				return nil
			}
			_, err = cs.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

type healthView struct {
	OverallStatus string `json:"overall_status"`
	HealthRecords []struct {
		AgentID uuid.UUID `json:"agent_id"`
		Status  string    `json:"status"`
		Summary struct {
			PodsReady  int      `json:"pods_ready"`
			PodsTotal  int      `json:"pods_total"`
			Conditions []string `json:"conditions"`
			Resources  []struct {
				Kind    string  `json:"kind"`
				Name    string  `json:"name"`
				Message *string `json:"message"`
			} `json:"resources"`
		} `json:"summary"`
	} `json:"health_records"`
}

// TestHealthAndDiagnostics runs the agent, as a user bound to the
// documented ClusterRole, against the real broker: the broker serves the
// health the agent reports (per deployment object and per stack); Pods in
// ImagePullBackOff turn it degraded with the reason; a failed Pod turns it
// failing, which puts a deployment.failed event in the broker's outbox; a
// diagnostic request goes pending → claimed → completed with pod statuses,
// events and per-container log tails.
func TestHealthAndDiagnostics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	env := testenv.ForTest(t)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ucfg := agentUserConfig(t, env)

	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "health-" + uuid.NewString()[:6]}, &st)
	ag := startAgent(t, b, ucfg, "health-agent", st.ID)
	ns := "health-" + uuid.NewString()[:8]
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	var do struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects",
		map[string]any{"yaml_content": fmt.Sprintf(quickStart, ns, "hello", 2)}, &do)
	objectHealth := func() healthView {
		var v healthView
		b.call(t, http.MethodGet, "/deployment-objects/"+do.ID.String()+"/health", nil, &v)
		return v
	}
	eventually(t, 90*time.Second, func() string {
		v := objectHealth()
		if v.OverallStatus == "healthy" && len(v.HealthRecords) == 1 && v.HealthRecords[0].Summary.PodsReady == 2 &&
			v.HealthRecords[0].AgentID == ag.id {
			return ""
		}
		return fmt.Sprintf("object health never became healthy with 2 ready pods: %+v", v)
	})
	var sv struct {
		OverallStatus     string `json:"overall_status"`
		DeploymentObjects []struct {
			ID     uuid.UUID `json:"id"`
			Status string    `json:"status"`
		} `json:"deployment_objects"`
	}
	b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/health", nil, &sv)
	if sv.OverallStatus != "healthy" || len(sv.DeploymentObjects) != 1 || sv.DeploymentObjects[0].ID != do.ID {
		t.Fatalf("stack health = %+v", sv)
	}

	// ImagePullBackOff on every Pod (no kubelet runs; kwok leaves Running
	// Pods alone): degraded, with the reason.
	setPodStatus(t, cs, ns, "app=web", func(p *corev1.Pod) bool {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
			p.Status.ContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "nginx:1.27"`}}
		}
		return true
	})
	eventually(t, 30*time.Second, func() string {
		v := objectHealth()
		if v.OverallStatus == "degraded" && slices.Equal(v.HealthRecords[0].Summary.Conditions, []string{"ImagePullBackOff"}) &&
			len(v.HealthRecords[0].Summary.Resources) == 2 && v.HealthRecords[0].Summary.PodsReady == 0 {
			return ""
		}
		return fmt.Sprintf("object health never became degraded by ImagePullBackOff: %+v", v)
	})

	// A diagnostic request while the Pods are in trouble.
	var req struct {
		ID     uuid.UUID `json:"id"`
		Status string    `json:"status"`
	}
	b.call(t, http.MethodPost, "/deployment-objects/"+do.ID.String()+"/diagnostics",
		map[string]any{"agent_id": ag.id, "requested_by": "e2e", "retention_minutes": 5}, &req)
	if req.Status != "pending" {
		t.Fatalf("request = %+v", req)
	}
	var view struct {
		Request struct {
			Status    string     `json:"status"`
			ClaimedAt *time.Time `json:"claimed_at"`
		} `json:"request"`
		Result *struct {
			PodStatuses string  `json:"pod_statuses"`
			Events      string  `json:"events"`
			LogTails    *string `json:"log_tails"`
			Error       *string `json:"error"`
		} `json:"result"`
	}
	eventually(t, 60*time.Second, func() string {
		b.call(t, http.MethodGet, "/diagnostics/"+req.ID.String(), nil, &view)
		if view.Request.Status == "completed" && view.Result != nil {
			return ""
		}
		return fmt.Sprintf("diagnostic request not completed: %+v", view)
	})
	if view.Request.ClaimedAt == nil || view.Result.Error != nil || view.Result.LogTails == nil {
		t.Fatalf("diagnostic = %+v", view)
	}
	var pods []diagnostics.PodStatus
	if err := json.Unmarshal([]byte(view.Result.PodStatuses), &pods); err != nil || len(pods) != 2 {
		t.Fatalf("pod_statuses %s: %v", view.Result.PodStatuses, err)
	}
	for _, p := range pods {
		if p.Namespace != ns || p.Phase != "Running" || len(p.Containers) != 1 || p.Containers[0].State != "waiting" ||
			p.Containers[0].StateReason == nil || *p.Containers[0].StateReason != "ImagePullBackOff" {
			t.Fatalf("pod status %+v", p)
		}
	}
	var events []diagnostics.Event
	if err := json.Unmarshal([]byte(view.Result.Events), &events); err != nil || len(events) == 0 {
		t.Fatalf("events %s: %v", view.Result.Events, err)
	}
	scheduled := false
	for _, e := range events {
		if e.Reason != nil && *e.Reason == "Scheduled" && strings.HasPrefix(e.InvolvedObject, "web-") {
			scheduled = true
		}
	}
	if !scheduled {
		t.Fatalf("no Scheduled event of the web pods in %s", view.Result.Events)
	}
	var tails map[string]string
	if err := json.Unmarshal([]byte(*view.Result.LogTails), &tails); err != nil || len(tails) != 2 {
		t.Fatalf("log_tails %s: %v", *view.Result.LogTails, err)
	}
	for k, v := range tails {
		// kwok runs no kubelet: each container reports its own error, and
		// it is not a permission problem.
		if !strings.HasSuffix(k, "/web") || !strings.HasPrefix(v, "Error: ") || strings.Contains(v, "forbidden") {
			t.Fatalf("log tail %s = %q", k, v)
		}
	}

	// A request the agent cannot serve (a stack it is not associated with)
	// ends as failed, with the reason.
	var other struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "other-" + uuid.NewString()[:6]}, &other)
	var otherDO struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks/"+other.ID.String()+"/deployment-objects",
		map[string]any{"yaml_content": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}, &otherDO)
	b.call(t, http.MethodPost, "/deployment-objects/"+otherDO.ID.String()+"/diagnostics",
		map[string]any{"agent_id": ag.id, "retention_minutes": 5}, &req)
	eventually(t, 30*time.Second, func() string {
		b.call(t, http.MethodGet, "/diagnostics/"+req.ID.String(), nil, &view)
		if view.Request.Status == "failed" && view.Result != nil && view.Result.Error != nil &&
			strings.Contains(*view.Result.Error, "403") {
			return ""
		}
		return fmt.Sprintf("diagnostic request for a foreign object did not fail: %+v", view)
	})

	// One Pod fails: failing, and the broker emits deployment.failed.
	failed := ""
	setPodStatus(t, cs, ns, "app=web", func(p *corev1.Pod) bool {
		if failed != "" && failed != p.Name {
			return false
		}
		failed = p.Name
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = "Evicted"
		return true
	})
	eventually(t, 30*time.Second, func() string {
		v := objectHealth()
		if v.OverallStatus == "failing" && slices.Contains(v.HealthRecords[0].Summary.Conditions, "PodFailed") {
			return ""
		}
		return fmt.Sprintf("object health never became failing: %+v", v)
	})
	conn, err := pgx.Connect(context.Background(), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(),
		`SELECT count(*) FROM outbox_events WHERE event_type = 'deployment.failed'
		   AND payload->'data'->>'deployment_object_id' = $1 AND payload->'data'->>'agent_id' = $2
		   AND payload->'data'->>'reason' = 'health' AND payload->'data'->>'status' = 'failing'`, do.ID.String(), ag.id.String()).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("deployment.failed events in the outbox: %d (%v)", n, err)
	}
}
