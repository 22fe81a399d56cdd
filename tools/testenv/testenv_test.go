package testenv_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// poll calls cond every 100 ms until it returns true or ctx ends.
func poll(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestCheckBinariesMessage(t *testing.T) {
	err := testenv.CheckBinaries(t.TempDir(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "tools/testenv/build.sh") {
		t.Fatalf("want an error telling to run tools/testenv/build.sh, got %v", err)
	}
}

// TestStartStop starts a private, detached control plane, stops it through a
// state reloaded from its directory (the path `testenv down` takes) and
// checks that every process is gone.
func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	began := time.Now()
	env, err := testenv.Start(context.Background(), testenv.Options{Dir: dir, Detach: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	t.Logf("start (etcd + apiserver + KCM + scheduler + kwok node Ready): %s", time.Since(began).Round(time.Millisecond))

	if len(env.Processes) != 5 {
		t.Fatalf("want 5 processes, got %+v", env.Processes)
	}
	for _, st := range env.Status() {
		if !st.Alive {
			t.Fatalf("%s (pid %d) not alive", st.Name, st.PID)
		}
		if _, err := os.Stat(dir + "/" + st.Name + ".pid"); err != nil {
			t.Errorf("pid file: %v", err)
		}
	}
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testenv.K8sVersion {
		t.Errorf("server version %q, want %q", v.GitVersion, testenv.K8sVersion)
	}

	// The unprivileged token user authenticates but is forbidden.
	ucfg, err := env.UserRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	ucs := kubernetes.NewForConfigOrDie(ucfg)
	_, err = ucs.CoreV1().Namespaces().List(ctxFor(t, 10*time.Second), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("unprivileged user listing namespaces: want Forbidden, got %v", err)
	}

	loaded, err := testenv.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	if err := loaded.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %s", time.Since(began).Round(time.Millisecond))
	for _, p := range env.Processes {
		if testenv.Alive(p.PID, p.Binary) {
			t.Errorf("%s (pid %d) still alive after Stop", p.Name, p.PID)
		}
		if _, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe"); err == nil {
			t.Errorf("/proc/%d/exe still readable", p.PID)
		}
		if _, err := os.Stat(dir + "/" + p.Name + ".pid"); !os.IsNotExist(err) {
			t.Errorf("pid file of %s not removed: %v", p.Name, err)
		}
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestDeploymentRunsOnKwokNode(t *testing.T) {
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 90*time.Second)
	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Image: "registry.example/web:1",
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	poll(t, ctx, "3 Running pods on the kwok node", func() (bool, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == env.NodeName && p.Status.PodIP != "" {
				running++
			}
		}
		return running == 3, nil
	})
	poll(t, ctx, "deployment Available", func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == 3, nil
	})
	// kwok completes graceful deletion (there is no kubelet).
	victim := pods[0].Name
	if err := cs.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "deleted pod gone and replaced", func() (bool, error) {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, victim, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == 3, nil
	})
}

func TestServerSideApply(t *testing.T) {
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 30*time.Second)
	cm, err := cs.CoreV1().ConfigMaps(ns).Apply(ctx,
		applycorev1.ConfigMap("settings", ns).WithData(map[string]string{"mode": "fast"}),
		metav1.ApplyOptions{FieldManager: "brokkr-a"})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["mode"] != "fast" {
		t.Fatalf("data = %v", cm.Data)
	}
	found := false
	for _, mf := range cm.ManagedFields {
		if mf.Manager == "brokkr-a" && mf.Operation == metav1.ManagedFieldsOperationApply {
			found = true
		}
	}
	if !found {
		t.Fatalf("no Apply managedFields entry for brokkr-a: %+v", cm.ManagedFields)
	}
	// A second manager changing the same field conflicts unless it forces.
	_, err = cs.CoreV1().ConfigMaps(ns).Apply(ctx,
		applycorev1.ConfigMap("settings", ns).WithData(map[string]string{"mode": "slow"}),
		metav1.ApplyOptions{FieldManager: "brokkr-b"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("want a field-manager conflict, got %v", err)
	}
	cm, err = cs.CoreV1().ConfigMaps(ns).Apply(ctx,
		applycorev1.ConfigMap("settings", ns).WithData(map[string]string{"mode": "slow"}),
		metav1.ApplyOptions{FieldManager: "brokkr-b", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["mode"] != "slow" {
		t.Fatalf("data after forced apply = %v", cm.Data)
	}
}

func TestCRDEstablished(t *testing.T) {
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 60*time.Second)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.testenv.brokkr-go.io"},
		"spec": map[string]any{
			"group": "testenv.brokkr-go.io",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{
						"spec": map[string]any{
							"type":       "object",
							"properties": map[string]any{"size": map[string]any{"type": "integer"}},
						},
					},
				}},
			}},
		},
	}}
	if _, err := dyn.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(crdGVR).Delete(context.Background(), "widgets.testenv.brokkr-go.io", metav1.DeleteOptions{})
	})
	poll(t, ctx, "CRD Established", func() (bool, error) {
		u, err := dyn.Resource(crdGVR).Get(ctx, "widgets.testenv.brokkr-go.io", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "testenv.brokkr-go.io", Version: "v1", Resource: "widgets"}).Namespace(ns)
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "testenv.brokkr-go.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1"},
		"spec":     map[string]any{"size": int64(3)},
	}}
	poll(t, ctx, "create a Widget", func() (bool, error) {
		_, err := widgets.Create(ctx, w, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), err
	})
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "testenv.brokkr-go.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w2"},
		"spec":     map[string]any{"size": "big"},
	}}
	if _, err := widgets.Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("schema validation: want Invalid, got %v", err)
	}
}

func TestKubectl(t *testing.T) {
	env := testenv.ForTest(t)
	cmd := exec.Command(env.KubectlPath(), "version", "-o", "json")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	var v struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.ClientVersion.GitVersion != testenv.K8sVersion || v.ServerVersion.GitVersion != testenv.K8sVersion {
		t.Fatalf("kubectl version: %s", out)
	}
	out, err = exec.Command(env.KubectlPath(), "--kubeconfig", env.Kubeconfig, "get", "node", env.NodeName, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}").CombinedOutput()
	if err != nil || string(out) != "True" {
		t.Fatalf("kubectl get node: %v: %s", err, out)
	}
}
