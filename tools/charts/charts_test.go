package charts

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/brokkr-go/brokkr/tools/images"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	rootDir   string
	brokerDir string
	agentDir  string
)

func init() {
	wd, _ := os.Getwd()
	r, err := images.FindRoot(wd)
	if err != nil {
		panic(err)
	}
	rootDir = r
	brokerDir = filepath.Join(r, "deployments/helm/brokkr-broker")
	agentDir = filepath.Join(r, "deployments/helm/brokkr-agent")
}

func helm(t *testing.T) string {
	t.Helper()
	p, err := Tool(rootDir, "helm")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The docs' agent flags (docs/install.md): URL, PAK, name and cluster.
var agentDocsFlags = []string{
	"--set", "broker.url=http://brokkr-broker:3000",
	"--set", "broker.pak=brokkr_BRtest0000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"--set", "broker.agentName=my-agent",
	"--set", "broker.clusterName=development",
}

type variant struct {
	chart, values string // values: "" = the chart's defaults
	flags         []string
	tag           string // names a variant that adds flags to a values file
}

// The production values with Redis Sentinel instead of one endpoint
// (docs/install.md#redis), the sentinels' password in redis.existingSecret.
var sentinelFlags = []string{
	"--set", "redis.external.sentinel.masterName=mymaster",
	"--set", "redis.external.sentinel.addresses={sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379}",
	"--set", "redis.external.sentinel.existingSecretPasswordKey=sentinel-password",
}

func (v variant) name() string {
	n := filepath.Base(v.chart)
	if v.values == "" {
		return n + "/defaults"
	}
	n += "/" + strings.TrimSuffix(v.values, ".yaml")
	if v.tag != "" {
		n += "+" + v.tag
	}
	return n
}

func (v variant) args() []string {
	var a []string
	if v.values != "" {
		a = append(a, "-f", filepath.Join(v.chart, "values", v.values))
	}
	return append(a, v.flags...)
}

func variants() []variant {
	var out []variant
	for _, vf := range []string{"", "development.yaml", "staging.yaml", "production.yaml"} {
		out = append(out, variant{chart: brokerDir, values: vf})
		out = append(out, variant{chart: agentDir, values: vf, flags: agentDocsFlags})
	}
	return append(out, variant{chart: brokerDir, values: "production.yaml", flags: sentinelFlags, tag: "sentinel"})
}

func render(t *testing.T, release, namespace string, v variant, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", release, v.chart, "--namespace", namespace}, v.args()...)
	out, err := Run(nil, helm(t), append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatalf("rendered YAML does not parse: %v", err)
	}
	return objs
}

func TestLintEveryValuesFile(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name(), func(t *testing.T) {
			args := append([]string{"lint", "--strict", v.chart}, v.args()...)
			if out, err := Run(nil, helm(t), args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func kinds(objs []*unstructured.Unstructured) map[string][]string {
	m := map[string][]string{}
	for _, o := range objs {
		m[o.GetKind()] = append(m[o.GetKind()], o.GetName())
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

func podSpec(o *unstructured.Unstructured) (map[string]any, bool) {
	path := []string{"spec", "template", "spec"}
	if o.GetKind() == "Pod" {
		path = []string{"spec"}
	}
	m, ok, _ := unstructured.NestedMap(o.Object, path...)
	return m, ok
}

// Every pod the charts create is hardened; only the agent gets a token,
// and the broker's auth (for the admin PAK Secret, see
// TestAuthMayOnlyTouchTheAdminPAKSecret).
func TestRenderedPodsAreHardened(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name(), func(t *testing.T) {
			objs := render(t, filepath.Base(v.chart), "brokkr", v)
			n := 0
			for _, o := range objs {
				switch o.GetKind() {
				case "Deployment", "StatefulSet", "Job":
				default:
					continue
				}
				n++
				ps, _ := podSpec(o)
				id := o.GetKind() + "/" + o.GetName()
				wantToken := filepath.Base(v.chart) == "brokkr-agent" || o.GetName() == "brokkr-broker-auth"
				if tok, _ := ps["automountServiceAccountToken"].(bool); tok != wantToken {
					t.Errorf("%s: automountServiceAccountToken = %v, want %v", id, ps["automountServiceAccountToken"], wantToken)
				}
				psc, _ := ps["securityContext"].(map[string]any)
				if psc["runAsNonRoot"] != true || !reflect.DeepEqual(psc["seccompProfile"], map[string]any{"type": "RuntimeDefault"}) {
					t.Errorf("%s: pod securityContext %v", id, psc)
				}
				for _, c := range ps["containers"].([]any) {
					c := c.(map[string]any)
					sc, _ := c["securityContext"].(map[string]any)
					caps, _ := sc["capabilities"].(map[string]any)
					if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
						sc["runAsNonRoot"] != true || !reflect.DeepEqual(caps["drop"], []any{"ALL"}) {
						t.Errorf("%s/%s: container securityContext %v", id, c["name"], sc)
					}
					if _, ok := c["resources"].(map[string]any)["limits"]; !ok {
						t.Errorf("%s/%s: no resource limits", id, c["name"])
					}
				}
			}
			if n == 0 {
				t.Fatal("no workloads rendered")
			}
		})
	}
}

var secretish = regexp.MustCompile(`(?i)(PAK|PASSWORD|ENCRYPTION_KEY|DATABASE__URL|REDIS__URL)`)

// Credentials never land in a ConfigMap, whatever the values file.
func TestNothingSecretInConfigMaps(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name(), func(t *testing.T) {
			extra := []string{"--set", "broker.pakHash=" + strings.Repeat("ab", 32), "--set", "broker.webhookEncryptionKey=" + strings.Repeat("cd", 32)}
			if filepath.Base(v.chart) == "brokkr-agent" {
				extra = nil
			}
			for _, o := range render(t, "brokkr-broker", "brokkr", v, extra...) {
				if o.GetKind() != "ConfigMap" || strings.Contains(o.GetName(), "dashboard") {
					continue
				}
				data, _, _ := unstructured.NestedStringMap(o.Object, "data")
				for k, val := range data {
					if (secretish.MatchString(k) && !strings.HasSuffix(k, "_FILE")) || strings.Contains(val, "postgres://") || strings.Contains(val, strings.Repeat("ab", 32)) || strings.Contains(val, "brokkr_BR") {
						t.Errorf("ConfigMap %s carries %s=%q", o.GetName(), k, val)
					}
				}
			}
		})
	}
}

func TestBrokerObjectsPerValuesFile(t *testing.T) {
	t.Run("defaults (the docs' quick start)", func(t *testing.T) {
		objs := render(t, "brokkr-broker", "brokkr", variant{chart: brokerDir}, "--set", "postgresql.enabled=true")
		k := kinds(objs)
		want := []string{"brokkr-broker", "brokkr-broker-auth", "brokkr-broker-templating", "brokkr-broker-webhook-dispatch", "brokkr-broker-work-order-scheduler"}
		if !reflect.DeepEqual(k["Deployment"], want) {
			t.Errorf("Deployments = %v, want %v", k["Deployment"], want)
		}
		if !reflect.DeepEqual(k["StatefulSet"], []string{"brokkr-broker-postgresql", "brokkr-broker-redis"}) {
			t.Errorf("StatefulSets = %v", k["StatefulSet"])
		}
		for _, o := range objs {
			if o.GetKind() == "Service" && o.GetName() == "brokkr-broker" {
				ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
				if p := ports[0].(map[string]any)["port"]; fmt.Sprint(p) != "3000" {
					t.Errorf("svc/brokkr-broker port %v, want 3000", p)
				}
			}
			if o.GetKind() == "Service" && o.GetName() != "brokkr-broker" {
				if typ, _, _ := unstructured.NestedString(o.Object, "spec", "type"); typ != "" && typ != "ClusterIP" {
					t.Errorf("%s is %s", o.GetName(), typ)
				}
			}
		}
		for _, absent := range []string{"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Ingress"} {
			if len(k[absent]) > 0 {
				t.Errorf("defaults render %s %v", absent, k[absent])
			}
		}
	})
	t.Run("production", func(t *testing.T) {
		objs := render(t, "brokkr-broker", "brokkr", variant{chart: brokerDir, values: "production.yaml"})
		k := kinds(objs)
		check := func(kind string, want ...string) {
			t.Helper()
			sort.Strings(want)
			if !reflect.DeepEqual(k[kind], want) {
				t.Errorf("%s = %v, want %v", kind, k[kind], want)
			}
		}
		check("HorizontalPodAutoscaler", "brokkr-broker", "brokkr-broker-webhook-dispatch", "brokkr-broker-work-order-scheduler")
		check("PodDisruptionBudget", "brokkr-broker", "brokkr-broker-auth", "brokkr-broker-templating", "brokkr-broker-webhook-dispatch", "brokkr-broker-work-order-scheduler")
		check("NetworkPolicy", "brokkr-broker", "brokkr-broker-auth", "brokkr-broker-templating", "brokkr-broker-webhook-dispatch", "brokkr-broker-work-order-scheduler")
		check("Ingress", "brokkr-broker")
		check("StatefulSet")
		check("ServiceMonitor", "brokkr-broker")
		check("PrometheusRule", "brokkr-broker")
		if len(k["ConfigMap"]) != 5 { // settings + four dashboards
			t.Errorf("ConfigMaps = %v", k["ConfigMap"])
		}
		for _, o := range objs {
			switch {
			case o.GetKind() == "Deployment":
				spread, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "topologySpreadConstraints")
				if len(spread) != 2 {
					t.Errorf("%s: topology spread %v", o.GetName(), spread)
				}
				if _, hasReplicas, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); hasReplicas && (o.GetName() == "brokkr-broker" || strings.HasSuffix(o.GetName(), "dispatch") || strings.HasSuffix(o.GetName(), "scheduler")) {
					t.Errorf("%s sets replicas although an HPA scales it", o.GetName())
				}
			case o.GetKind() == "Ingress":
				tls, _, _ := unstructured.NestedSlice(o.Object, "spec", "tls")
				svc, _, _ := unstructured.NestedString(o.Object, "spec", "rules", "0", "http", "paths", "0", "backend", "service", "name")
				_ = svc
				if len(tls) != 1 {
					t.Errorf("ingress tls %v", tls)
				}
			case o.GetKind() == "NetworkPolicy" && o.GetName() == "brokkr-broker-auth":
				from, _, _ := unstructured.NestedSlice(o.Object, "spec", "ingress")
				first := from[0].(map[string]any)["from"].([]any)[0].(map[string]any)
				sel, _, _ := unstructured.NestedStringMap(first, "podSelector", "matchLabels")
				if sel["app.kubernetes.io/component"] != "api" || len(first) != 1 {
					t.Errorf("auth is reachable from %v, want api pods only", first)
				}
			}
		}
		env := envOf(objs, "brokkr-broker")
		if env["BROKKR__BROKER__PAK_HASH"] != "secret:brokkr-broker-admin-pak-hash/BROKKR__BROKER__PAK_HASH" ||
			env["BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY"] != "secret:brokkr-broker-webhook-key/BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY" ||
			env["BROKKR__DATABASE__URL"] != "secret:brokkr-broker-db/database-url" ||
			env["BROKKR_REDIS_PASSWORD"] != "secret:brokkr-broker-redis/redis-password" ||
			env["BROKKR__REDIS__URL"] != "rediss://:$(BROKKR_REDIS_PASSWORD)@redis.example.internal:6379/0" {
			t.Errorf("production env = %v", env)
		}
	})
}

// External Redis Sentinel and Cluster values become the services'
// BROKKR__REDIS__* settings in every Deployment,
// passwords by secretKeyRef only; half or contradictory settings fail the
// render with a message naming the value.
func TestBrokerRedisTopologies(t *testing.T) {
	deployments := []string{"brokkr-broker", "brokkr-broker-auth", "brokkr-broker-templating",
		"brokkr-broker-work-order-scheduler", "brokkr-broker-webhook-dispatch"}
	for _, tc := range []struct {
		name   string
		v      variant
		want   map[string]string
		secret map[string]string // chart Secret keys expected
	}{
		{name: "sentinel from existingSecret", v: variant{chart: brokerDir, values: "production.yaml", flags: sentinelFlags},
			want: map[string]string{
				"BROKKR__REDIS__URL":               "rediss://:$(BROKKR_REDIS_PASSWORD)@sentinel-0.redis:26379/0",
				"BROKKR__REDIS__SENTINEL_MASTER":   "mymaster",
				"BROKKR__REDIS__SENTINEL_ADDRS":    "sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379",
				"BROKKR__REDIS__SENTINEL_PASSWORD": "secret:brokkr-broker-redis/sentinel-password",
				"BROKKR_REDIS_PASSWORD":            "secret:brokkr-broker-redis/redis-password",
			}},
		{name: "sentinel with plain passwords", v: variant{chart: brokerDir, flags: []string{"--set", "redis.enabled=false",
			"--set", "redis.external.password=data-pw", "--set", "redis.external.db=2",
			"--set", "redis.external.sentinel.masterName=m", "--set", "redis.external.sentinel.addresses={s:26379}",
			"--set", "redis.external.sentinel.password=sentinel-pw"}},
			want: map[string]string{
				"BROKKR__REDIS__URL":               "redis://:$(BROKKR_REDIS_PASSWORD)@s:26379/2",
				"BROKKR__REDIS__SENTINEL_MASTER":   "m",
				"BROKKR__REDIS__SENTINEL_ADDRS":    "s:26379",
				"BROKKR__REDIS__SENTINEL_PASSWORD": "secret:brokkr-broker/redis-sentinel-password",
				"BROKKR_REDIS_PASSWORD":            "secret:brokkr-broker/redis-password",
			},
			secret: map[string]string{"redis-password": "data-pw", "redis-sentinel-password": "sentinel-pw"}},
		{name: "cluster", v: variant{chart: brokerDir, values: "staging.yaml", flags: []string{
			"--set", "redis.external.cluster.addresses={n0:6379,n1:6379,n2:6379}"}},
			want: map[string]string{
				"BROKKR__REDIS__URL":           "redis://:$(BROKKR_REDIS_PASSWORD)@n0:6379/0",
				"BROKKR__REDIS__CLUSTER_ADDRS": "n0:6379,n1:6379,n2:6379",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "brokkr-broker", "brokkr", tc.v)
			for _, d := range deployments {
				env := envOf(objs, d)
				for k, want := range tc.want {
					if env[k] != want {
						t.Errorf("%s: %s = %q, want %q", d, k, env[k], want)
					}
				}
				if _, ok := env["BROKKR__REDIS__CLUSTER_ADDRS"]; ok && tc.want["BROKKR__REDIS__CLUSTER_ADDRS"] == "" {
					t.Errorf("%s: cluster addresses set with Sentinel", d)
				}
			}
			for k, want := range tc.secret {
				found := false
				for _, o := range objs {
					if o.GetKind() == "Secret" && o.GetName() == "brokkr-broker" {
						got, _, _ := unstructured.NestedString(o.Object, "stringData", k)
						found = got == want
					}
				}
				if !found {
					t.Errorf("Secret brokkr-broker has no %s=%q", k, want)
				}
			}
		})
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--set", "redis.external.sentinel.masterName=m"}, "redis.external.sentinel.addresses must list the sentinels"},
		{[]string{"--set", "redis.external.sentinel.addresses={s:26379}"}, "redis.external.sentinel.masterName is required"},
		{[]string{"--set", "redis.external.sentinel.masterName=m", "--set", "redis.external.sentinel.addresses={s:26379}",
			"--set", "redis.external.cluster.addresses={n:6379}"}, "set sentinel or cluster, not both"},
		{[]string{"--set", "redis.external.cluster.addresses={n:6379}", "--set", "redis.external.db=3"}, "redis.external.db must be 0"},
		{[]string{"--set", "redis.external.cluster.addresses={n0}"}, "redis.external.cluster.addresses"},
	} {
		t.Run("refuses "+tc.want, func(t *testing.T) {
			args := append([]string{"template", "x", brokerDir, "-f", filepath.Join(brokerDir, "values", "staging.yaml")}, tc.flags...)
			_, err := Run(nil, helm(t), args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// envOf flattens a Deployment's container env: values, or secret:name/key.
func envOf(objs []*unstructured.Unstructured, deployment string) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != deployment {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, e := range cs[0].(map[string]any)["env"].([]any) {
			e := e.(map[string]any)
			if v, ok := e["value"].(string); ok {
				out[e["name"].(string)] = v
				continue
			}
			ref, _, _ := unstructured.NestedStringMap(e, "valueFrom", "secretKeyRef")
			out[e["name"].(string)] = "secret:" + ref["name"] + "/" + ref["key"]
		}
	}
	return out
}

// rbacYAMLRules reads the agent's ClusterRole from services/agent/rbac.yaml,
// the one source of its permissions.
func rbacYAMLRules(t *testing.T) []any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(rootDir, "services/agent/rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && o.GetName() == "brokkr-agent" {
			r, _, _ := unstructured.NestedSlice(o.Object, "rules")
			return r
		}
	}
	t.Fatal("no ClusterRole brokkr-agent in services/agent/rbac.yaml")
	return nil
}

func roleRules(t *testing.T, objs []*unstructured.Unstructured, kind string) []any {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			r, _, _ := unstructured.NestedSlice(o.Object, "rules")
			return r
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// auth's Role lets it create Secrets and get/update its admin PAK Secret,
// nothing else, bound to auth's own ServiceAccount; with
// broker.adminPakSecret.enabled=false the broker has no RBAC and no token.
func TestAuthMayOnlyTouchTheAdminPAKSecret(t *testing.T) {
	objs := render(t, "brokkr-broker", "brokkr", variant{chart: brokerDir})
	got, _ := json.Marshal(roleRules(t, objs, "Role"))
	want := `[{"apiGroups":[""],"resources":["secrets"],"verbs":["create"]},{"apiGroups":[""],"resourceNames":["brokkr-broker-admin-pak"],"resources":["secrets"],"verbs":["get","update"]}]`
	if string(got) != want {
		t.Errorf("auth Role rules %s, want %s", got, want)
	}
	k := kinds(objs)
	if !reflect.DeepEqual(k["Role"], []string{"brokkr-broker-auth"}) || !reflect.DeepEqual(k["RoleBinding"], []string{"brokkr-broker-auth"}) || len(k["ClusterRole"]) > 0 {
		t.Errorf("RBAC objects %v %v %v", k["Role"], k["RoleBinding"], k["ClusterRole"])
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		ps, _ := podSpec(o)
		env := envOf(objs, o.GetName())
		if o.GetName() == "brokkr-broker-auth" {
			if ps["serviceAccountName"] != "brokkr-broker-auth" || env["BROKKR__BROKER__ADMIN_PAK_SECRET"] != "brokkr-broker-admin-pak" {
				t.Errorf("auth: service account %v, env %v", ps["serviceAccountName"], env)
			}
		} else if _, ok := env["BROKKR__BROKER__ADMIN_PAK_SECRET"]; ok || ps["serviceAccountName"] == "brokkr-broker-auth" {
			t.Errorf("%s has auth's Secret setting or account", o.GetName())
		}
	}
	off := render(t, "brokkr-broker", "brokkr", variant{chart: brokerDir}, "--set", "broker.adminPakSecret.enabled=false")
	if k := kinds(off); len(k["Role"]) > 0 || len(k["RoleBinding"]) > 0 {
		t.Errorf("adminPakSecret off still renders RBAC %v", k)
	}
	for _, o := range off {
		if o.GetKind() == "Deployment" {
			if ps, _ := podSpec(o); ps["automountServiceAccountToken"] != false {
				t.Errorf("%s mounts a token with adminPakSecret off", o.GetName())
			}
		}
	}
}

func TestAgentRulesAreServicesAgentRBACYAML(t *testing.T) {
	want := rbacYAMLRules(t)
	t.Run("cluster-wide (default)", func(t *testing.T) {
		got := roleRules(t, render(t, "brokkr-agent", "brokkr", variant{chart: agentDir, flags: agentDocsFlags}), "ClusterRole")
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Fatalf("chart rules differ from services/agent/rbac.yaml:\nchart: %s\nfile:  %s", gj, wj)
		}
	})
	t.Run("namespaced drops cluster-scoped kinds only", func(t *testing.T) {
		objs := render(t, "brokkr-agent", "brokkr", variant{chart: agentDir, flags: agentDocsFlags}, "--set", "rbac.clusterWide=false")
		if k := kinds(objs); len(k["ClusterRole"]) > 0 || len(k["ClusterRoleBinding"]) > 0 || len(k["RoleBinding"]) != 1 {
			t.Fatalf("namespaced mode renders %v", k)
		}
		got := roleRules(t, objs, "Role")
		clusterScoped := map[string]bool{"namespaces": true, "clusterroles": true, "clusterrolebindings": true, "customresourcedefinitions": true}
		var expect []any
		for _, r := range want {
			r := r.(map[string]any)
			var res []any
			for _, x := range r["resources"].([]any) {
				if !clusterScoped[x.(string)] {
					res = append(res, x)
				}
			}
			if len(res) > 0 {
				expect = append(expect, map[string]any{"apiGroups": r["apiGroups"], "resources": res, "verbs": r["verbs"]})
			}
		}
		if !reflect.DeepEqual(got, expect) {
			t.Fatalf("namespaced rules = %v\nwant %v", got, expect)
		}
	})
	t.Run("secretAccess=false and shipwright=false remove exactly those", func(t *testing.T) {
		got := roleRules(t, render(t, "brokkr-agent", "brokkr", variant{chart: agentDir, flags: agentDocsFlags},
			"--set", "rbac.secretAccess.enabled=false", "--set", "shipwright.enabled=false"), "ClusterRole")
		j, _ := json.Marshal(got)
		if strings.Contains(string(j), `"secrets"`) || strings.Contains(string(j), "shipwright.io") {
			t.Fatalf("rules still grant secrets or shipwright: %s", j)
		}
		if len(got) != len(want)-1 {
			t.Fatalf("%d rules, want %d (all but shipwright.io)", len(got), len(want)-1)
		}
	})
}

// values.schema.json turns a typo into a clear failure of helm install/template.
func TestSchemaRejectsTypos(t *testing.T) {
	for _, tc := range []struct {
		chart string
		flags []string
		want  string
	}{
		{brokerDir, []string{"--set", "postgresql.enabeld=true"}, "enabeld"},
		{brokerDir, []string{"--set", "broker.logLevel=verbose"}, "logLevel"},
		{brokerDir, []string{"--set", "broker.pakHash=nothex"}, "pakHash"},
		{brokerDir, []string{"--set", "api.replicas=-1"}, "replicas"},
		{agentDir, append([]string{"--set", "rbac.clusterwide=false"}, agentDocsFlags...), "clusterwide"},
		{agentDir, []string{"--set", "broker.url=http://x:3000", "--set", "broker.agentName=a", "--set", "broker.clusterName=c"}, "broker.pak"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Run(nil, helm(t), append([]string{"template", "x", tc.chart}, tc.flags...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

var metricRE = regexp.MustCompile(`brokkr_[a-z_]+`)

// Every metric the alerts and dashboards use is one the services export.
func TestAlertsAndDashboardsUseExportedMetrics(t *testing.T) {
	var text strings.Builder
	for _, o := range render(t, "brokkr-broker", "brokkr", variant{chart: brokerDir, values: "production.yaml"}) {
		if o.GetKind() == "PrometheusRule" {
			b, _ := json.Marshal(o.Object)
			text.Write(b)
		}
	}
	dashboards, _ := filepath.Glob(filepath.Join(brokerDir, "dashboards", "*.json"))
	if len(dashboards) != 4 {
		t.Fatalf("dashboards: %v", dashboards)
	}
	for _, d := range dashboards {
		raw, _ := os.ReadFile(d)
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		text.Write(raw)
	}
	exported := map[string]bool{}
	for _, dir := range []string{"pkg", "services"} {
		_ = filepath.Walk(filepath.Join(rootDir, dir), func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, m := range regexp.MustCompile(`"(brokkr_[a-z_]+)"`).FindAllSubmatch(b, -1) {
				exported[string(m[1])] = true
			}
			return nil
		})
	}
	used := map[string]bool{}
	for _, m := range metricRE.FindAllString(text.String(), -1) {
		used[strings.TrimSuffix(m, "_bucket")] = true
	}
	if len(used) < 10 {
		t.Fatalf("only %d metrics found in alerts and dashboards", len(used))
	}
	for m := range used {
		if !exported[m] {
			t.Errorf("%s is used by an alert or dashboard but no service exports it", m)
		}
	}
}

func kubectl(t *testing.T, env *testenv.Env, stdin string, args ...string) string {
	t.Helper()
	cmd := append([]string{"--kubeconfig", env.Kubeconfig}, args...)
	c := execCmd(env.KubectlPath(), cmd...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The rendered objects of every values file are accepted by a real
// kube-apiserver (server-side dry-run: admission, validation, defaulting).
// Prometheus Operator kinds are left out: their CRDs are not installed.
func TestServerSideDryRun(t *testing.T) {
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	for _, v := range variants() {
		t.Run(v.name(), func(t *testing.T) {
			var docs []string
			for _, o := range render(t, filepath.Base(v.chart), ns, v) {
				if strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/") {
					continue
				}
				b, _ := yaml.Marshal(o.Object)
				docs = append(docs, string(b))
			}
			out := kubectl(t, env, strings.Join(docs, "---\n"), "apply", "--dry-run=server", "-n", ns, "-f", "-")
			if n := strings.Count(out, "(server dry run)"); n != len(docs) {
				t.Fatalf("%d of %d objects accepted:\n%s", n, len(docs), out)
			}
		})
	}
}

func helmEnv(env *testenv.Env) []string {
	return []string{"KUBECONFIG=" + env.Kubeconfig, "HELM_CACHE_HOME=" + os.TempDir() + "/brokkr-helm-cache", "HELM_CONFIG_HOME=" + os.TempDir() + "/brokkr-helm-config", "HELM_DATA_HOME=" + os.TempDir() + "/brokkr-helm-data"}
}

// `helm package` (the release path) stores the content of the agent chart's
// files/rbac.yaml symlink, so a packaged chart grants what the file says.
func TestPackagedAgentChartCarriesRBACYAML(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(nil, helm(t), "package", agentDir, "--destination", dir); err != nil {
		t.Fatal(err)
	}
	pkgs, _ := filepath.Glob(filepath.Join(dir, "brokkr-agent-*.tgz"))
	if len(pkgs) != 1 {
		t.Fatalf("packages: %v", pkgs)
	}
	out, err := Run(nil, helm(t), "template", "brokkr-agent", pkgs[0], "--namespace", "brokkr",
		"--set", "broker.pak=x", "--set", "broker.agentName=a", "--set", "broker.clusterName=c")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := roleRules(t, objs, "ClusterRole"), rbacYAMLRules(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("packaged chart's rules differ from services/agent/rbac.yaml")
	}
}
