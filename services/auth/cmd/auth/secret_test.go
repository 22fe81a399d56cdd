package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// adminPAKRole is the least privilege the chart gives auth for its Secret
// (deployments/helm/brokkr-broker/templates/serviceaccount.yaml): create
// (which RBAC cannot limit by name) and get/update of that one name.
func adminPAKRole(ns, name string) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "brokkr-auth-admin-pak", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get", "update"}},
		},
	}
}

// TestServeStoresAdminPAKInSecret: with broker.admin_pak_secret the first
// start stores the generated admin PAK in a Kubernetes Secret (real
// kube-apiserver, as a user holding only the chart's Role) and prints
// nothing on stdout; without the permission nothing is committed and the
// start fails, so a PAK is never lost; a rotation replaces the Secret.
func TestServeStoresAdminPAKInSecret(t *testing.T) {
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	adminCfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(adminCfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const secretName = "brokkr-admin-pak"

	// auth runs as env.UserName, who has no permission yet.
	kc := clientcmdapi.NewConfig()
	userCfg, err := env.UserRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc.Clusters["t"] = &clientcmdapi.Cluster{Server: userCfg.Host, CertificateAuthorityData: userCfg.CAData}
	kc.AuthInfos["t"] = &clientcmdapi.AuthInfo{Token: userCfg.BearerToken}
	kc.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	kc.CurrentContext = "t"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)

	url := pgtest.NewEmpty(t)
	redistest.New(t)
	addr := testsupport.FreeAddr(t)
	environ := environ(map[string]string{
		"BROKKR__DATABASE__URL":                      url,
		"BROKKR__DATABASE__MIGRATE_ON_START":         "true",
		"BROKKR__AUTH__ADDR":                         addr,
		"BROKKR__DATABASE__MAX_OPEN_CONNS":           "4",
		"BROKKR__LOG__LEVEL":                         "info",
		"BROKKR__BROKER__ADMIN_PAK_SECRET":           secretName,
		"BROKKR__BROKER__ADMIN_PAK_SECRET_NAMESPACE": ns,
	})

	// 1. Forbidden: the bootstrap fails and commits nothing.
	var out0, err0 testsupport.SyncBuffer
	if code := run(ctx, []string{"serve"}, environ, &out0, &err0); code == 0 {
		t.Fatalf("serve without permission to the Secret exited 0:\n%s", err0.String())
	}
	if !strings.Contains(err0.String(), "forbidden") || out0.String() != "" {
		t.Fatalf("want a forbidden error on stderr and nothing on stdout; stdout %q stderr:\n%s", out0.String(), err0.String())
	}
	db, err := sqlx.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM app_initialization`); err != nil || n != 0 {
		t.Fatalf("app_initialization rows after a failed bootstrap: %d %v", n, err)
	}

	// 2. With the Role: the PAK lands in the Secret, not on stdout.
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, adminPAKRole(ns, secretName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "brokkr-auth-admin-pak", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "brokkr-auth-admin-pak"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: env.UserName}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	var out, errb testsupport.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- run(sctx, []string{"serve"}, environ, &out, &errb) }()
	base := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("auth never became ready: %v\n%s", err, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sec, err := admin.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adminPAK := string(sec.Data[kube.PAKSecretKey])
	if !strings.HasPrefix(adminPAK, "brokkr_BR") {
		t.Fatalf("Secret data %q", sec.Data)
	}
	if out.String() != "" {
		t.Fatalf("stdout carries %q although the PAK went to the Secret", out.String())
	}
	if strings.Contains(errb.String(), adminPAK) || !strings.Contains(errb.String(), ns+"/"+secretName) {
		t.Fatalf("the log must name the Secret and never hold the PAK:\n%s", errb.String())
	}
	client := authclient.New(base)
	if p, err := client.Authenticate(ctx, "Bearer "+adminPAK, authn.Client{IP: "192.0.2.1"}); err != nil || p != identity.Admin {
		t.Fatalf("admin PAK from the Secret: %v %v", p, err)
	}

	// The Role grants nothing beyond that Secret.
	user := kubernetes.NewForConfigOrDie(userCfg)
	if _, err := user.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets as auth: %v, want forbidden", err)
	}

	// 3. A rotation replaces the Secret's PAK (the update path).
	var rout, rerr testsupport.SyncBuffer
	if code := run(ctx, []string{"rotate", "admin"}, environ, &rout, &rerr); code != 0 {
		t.Fatalf("rotate admin: %d %s", code, rerr.String())
	}
	sec, err = admin.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rotated := string(sec.Data[kube.PAKSecretKey])
	if rotated == adminPAK || rout.String() != "New PAK: "+rotated+"\n" {
		t.Fatalf("after rotation the Secret holds %q, the CLI printed %q", rotated, rout.String())
	}
	stop()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	_ = os.Remove(kubeconfig)
}
