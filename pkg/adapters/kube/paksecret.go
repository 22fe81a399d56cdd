package kube

import (
	"context"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// PAKSecretKey is the data key of the admin PAK in its Secret.
const PAKSecretKey = "pak"

// serviceAccountNamespace is where the kubelet mounts the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// PAKSecret keeps the bootstrap admin PAK in one Kubernetes Secret (key
// "pak"), so that it never has to be printed where a log pipeline reads
// (docs/install.md, "Admin PAK"). It needs create on secrets and get/update
// on that one Secret name, nothing more.
type PAKSecret struct {
	secrets   corev1client.SecretInterface
	namespace string
	name      string
}

// NewPAKSecret returns the Secret namespace/name. An empty namespace means
// the pod's own (the service account's namespace file). cfg nil loads the
// in-cluster configuration (or $KUBECONFIG outside a cluster).
func NewPAKSecret(cfg *rest.Config, namespace, name string) (*PAKSecret, error) {
	if name == "" {
		return nil, fmt.Errorf("kube: the admin PAK Secret needs a name")
	}
	if namespace == "" {
		b, err := os.ReadFile(serviceAccountNamespace)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("kube: no namespace given for Secret %s and none mounted (%s): %v", name, serviceAccountNamespace, err)
		}
		namespace = strings.TrimSpace(string(b))
	}
	if cfg == nil {
		var err error
		if cfg, err = LoadRESTConfig(""); err != nil {
			return nil, err
		}
	}
	client, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return &PAKSecret{secrets: client.Secrets(namespace), namespace: namespace, name: name}, nil
}

// String names the Secret (namespace/name), for logs.
func (s *PAKSecret) String() string { return s.namespace + "/" + s.name }

// StorePAK writes p into the Secret, creating it or replacing its data.
func (s *PAKSecret) StorePAK(ctx context.Context, p secret.String) error {
	data := map[string][]byte{PAKSecretKey: []byte(p.Reveal())}
	obj := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "brokkr-auth"}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	_, err := s.secrets.Create(ctx, obj, metav1.CreateOptions{FieldManager: "brokkr-auth"})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube: create Secret %s: %w", s, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.secrets.Get(ctx, s.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Data = data
		cur.StringData = nil
		_, err = s.secrets.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "brokkr-auth"})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: update Secret %s: %w", s, err)
	}
	return nil
}
