package charts

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

func execCmd(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }

// The install guide's commands (docs/install.md), with the local chart path
// in place of the OCI reference, onto the local kube-apiserver: every
// Deployment becomes Available (kwok runs the pods), an upgrade with changed
// values rolls every Deployment after the pre-upgrade migration hook, and
// uninstall leaves nothing behind but the bundled database's PVC.
func TestInstallUpgradeUninstall(t *testing.T) {
	env := testenv.ForTest(t)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	h := helm(t)
	for _, tc := range []struct {
		name        string
		brokerFlags []string
		agentFlags  []string
	}{
		{"quick start", []string{"--set", "postgresql.enabled=true"}, agentDocsFlags},
		{"development setup", []string{"--set", "postgresql.enabled=true", "--set", "postgresql.auth.password=brokkr"},
			append(append([]string{}, agentDocsFlags...), "-f", agentDir+"/values/development.yaml")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testenv.NewNamespace(t, env)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			// The testenv has no volume provisioner: a PV for the bundled
			// PostgreSQL's claim, as a cluster's default StorageClass would make.
			pvName := "brokkr-pg-" + ns
			pv := &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: pvName},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
					PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + pvName}},
					ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "data-brokkr-broker-postgresql-0"},
				},
			}
			if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
			})

			he := helmEnv(env)
			run := func(args ...string) string {
				t.Helper()
				out, err := Run(he, h, append(args, "--namespace", ns)...)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			start := time.Now()
			run(append([]string{"install", "brokkr-broker", brokerDir, "--wait", "--timeout", "4m"}, tc.brokerFlags...)...)
			broker := []string{"brokkr-broker", "brokkr-broker-auth", "brokkr-broker-templating", "brokkr-broker-work-order-scheduler", "brokkr-broker-webhook-dispatch"}
			before := available(ctx, t, cs, ns, broker...)
			run(append([]string{"install", "brokkr-agent", agentDir, "--wait", "--timeout", "2m"}, tc.agentFlags...)...)
			beforeAgent := available(ctx, t, cs, ns, "brokkr-agent")
			t.Logf("both charts installed and Available in %s", time.Since(start).Round(time.Second))

			// Upgrade with a changed value: the migration hook runs first (a
			// failed hook fails the upgrade), then every Deployment rolls.
			start = time.Now()
			run("upgrade", "brokkr-broker", brokerDir, "--reuse-values", "--set", "broker.logLevel=warn", "--wait", "--timeout", "4m")
			if out := run("history", "brokkr-broker", "-o", "json"); !strings.Contains(out, `"status":"deployed"`) || !strings.Contains(out, `"revision":2`) {
				t.Fatalf("history after upgrade: %s", out)
			}
			after := available(ctx, t, cs, ns, broker...)
			for name, rev := range before {
				if after[name] == rev {
					t.Errorf("%s did not roll (pod template unchanged)", name)
				}
			}
			run("upgrade", "brokkr-agent", agentDir, "--reuse-values", "--set", "agent.pollingInterval=15", "--wait", "--timeout", "2m")
			if afterAgent := available(ctx, t, cs, ns, "brokkr-agent"); afterAgent["brokkr-agent"] == beforeAgent["brokkr-agent"] {
				t.Error("brokkr-agent did not roll")
			}
			t.Logf("both upgraded and rolled in %s", time.Since(start).Round(time.Second))

			run("uninstall", "brokkr-agent", "--wait", "--timeout", "2m")
			run("uninstall", "brokkr-broker", "--wait", "--timeout", "2m")
			leftovers(ctx, t, cs, ns)
		})
	}
}

// available waits until each Deployment is Available with all replicas
// updated and ready, and returns its pod template's checksum annotations.
func available(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		var d *appsv1.Deployment
		for {
			var err error
			d, err = cs.AppsV1().Deployments(ns).Get(ctx, n, metav1.GetOptions{})
			if err == nil && deploymentDone(d) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("deployment %s not Available: %v %+v", n, err, d)
			}
			time.Sleep(500 * time.Millisecond)
		}
		out[n] = d.Spec.Template.Annotations["checksum/config"] + d.Spec.Template.Annotations["checksum/secret"]
	}
	return out
}

func deploymentDone(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want || d.Status.AvailableReplicas != want || d.Status.Replicas != want {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// leftovers fails for any object of either release that survived uninstall;
// the bundled PostgreSQL's PVC is the documented exception.
func leftovers(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance in (brokkr-broker,brokkr-agent)"}
	var left []string
	add := func(kind string, n int, err error, names func(int) string) {
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		for i := 0; i < n; i++ {
			left = append(left, kind+"/"+names(i))
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		left = nil
		pods, err := cs.CoreV1().Pods(ns).List(ctx, sel)
		add("pod", len(pods.Items), err, func(i int) string { return pods.Items[i].Name })
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	d, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	add("deployment", len(d.Items), err, func(i int) string { return d.Items[i].Name })
	ss, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	add("statefulset", len(ss.Items), err, func(i int) string { return ss.Items[i].Name })
	svc, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	add("service", len(svc.Items), err, func(i int) string { return svc.Items[i].Name })
	cm, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	add("configmap", len(cm.Items), err, func(i int) string { return cm.Items[i].Name })
	sec, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	add("secret", len(sec.Items), err, func(i int) string { return sec.Items[i].Name })
	sa, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, sel)
	add("serviceaccount", len(sa.Items), err, func(i int) string { return sa.Items[i].Name })
	jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	add("job", len(jobs.Items), err, func(i int) string { return jobs.Items[i].Name })
	np, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	add("networkpolicy", len(np.Items), err, func(i int) string { return np.Items[i].Name })
	pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).List(ctx, metav1.ListOptions{})
	add("pdb", len(pdb.Items), err, func(i int) string { return pdb.Items[i].Name })
	hpa, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	add("hpa", len(hpa.Items), err, func(i int) string { return hpa.Items[i].Name })
	ro, err := cs.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
	add("role", len(ro.Items), err, func(i int) string { return ro.Items[i].Name })
	rb, err := cs.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	add("rolebinding", len(rb.Items), err, func(i int) string { return rb.Items[i].Name })
	cr, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=brokkr-agent"})
	crNames := []string{}
	for _, c := range cr.Items {
		if strings.HasPrefix(c.Name, ns+"-") {
			crNames = append(crNames, c.Name)
		}
	}
	add("clusterrole", len(crNames), err, func(i int) string { return crNames[i] })
	crb, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	crbNames := []string{}
	for _, c := range crb.Items {
		if strings.HasPrefix(c.Name, ns+"-") {
			crbNames = append(crbNames, c.Name)
		}
	}
	add("clusterrolebinding", len(crbNames), err, func(i int) string { return crbNames[i] })
	if len(left) > 0 {
		t.Errorf("left behind after helm uninstall: %v", left)
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pvcs.Items {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[data-brokkr-broker-postgresql-0]" {
		t.Errorf("PVCs after uninstall = %v, want only the bundled database's (kept, as the docs say)", names)
	}
}
