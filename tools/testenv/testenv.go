// Package testenv runs a real, local Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and a kwok fake
// node) from binaries built by tools/testenv/build.sh and cached outside the
// repository. See README.md.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Versions of the binaries build.sh produces. Keep in sync with build.sh.
const (
	K8sVersion  = "v1.37.2"
	EtcdVersion = "v3.7.3"
	KwokVersion = "v0.8.0"
)

// Component (process) names.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	Kubectl           = "kubectl"
)

const (
	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
	podCIDR     = "10.244.0.0/16"

	// DefaultNodeName is the name of the fake node managed by kwok.
	DefaultNodeName = "kwok-node-0"
	// KwokNodeAnnotation marks nodes managed by kwok.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"

	stateFile = "env.json"
)

// StageFiles are the kwok stage files build.sh copies next to bin/.
var StageFiles = []string{"node-fast.yaml", "node-heartbeat.yaml", "pod-fast.yaml"}

// CacheDir is where build.sh puts the binaries of K8sVersion:
// $BROKKR_TESTENV_CACHE/<version> or $HOME/.cache/brokkr/testenv/<version>.
func CacheDir() string {
	root := os.Getenv("BROKKR_TESTENV_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		root = filepath.Join(home, ".cache", "brokkr", "testenv")
	}
	return filepath.Join(root, K8sVersion)
}

// DefaultBinDir is $BROKKR_TESTENV_BIN if set, else CacheDir()/bin.
func DefaultBinDir() string {
	if d := os.Getenv("BROKKR_TESTENV_BIN"); d != "" {
		return d
	}
	return filepath.Join(CacheDir(), "bin")
}

// DefaultStagesDir is where the kwok stage files are looked up for binDir:
// $BROKKR_TESTENV_STAGES if set, else <binDir>/../stages if it exists, else
// CacheDir()/stages.
func DefaultStagesDir(binDir string) string {
	if d := os.Getenv("BROKKR_TESTENV_STAGES"); d != "" {
		return d
	}
	d := filepath.Join(filepath.Dir(filepath.Clean(binDir)), "stages")
	if _, err := os.Stat(d); err == nil {
		return d
	}
	return filepath.Join(CacheDir(), "stages")
}

// CheckBinaries returns an error naming every missing binary or stage file
// and telling how to build them.
func CheckBinaries(binDir, stagesDir string) error {
	var missing []string
	for _, b := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kubectl, Kwok} {
		if st, err := os.Stat(filepath.Join(binDir, b)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, filepath.Join(binDir, b))
		}
	}
	for _, f := range StageFiles {
		if _, err := os.Stat(filepath.Join(stagesDir, f)); err != nil {
			missing = append(missing, filepath.Join(stagesDir, f))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("testenv: control-plane binaries are missing (%s); build them once with `tools/testenv/build.sh` "+
			"from the repository root (cold build ~11 min, cached in %s), or point BROKKR_TESTENV_BIN at a folder holding them",
			strings.Join(missing, ", "), CacheDir())
	}
	return nil
}

// Options configure Start. The zero value starts everything.
type Options struct {
	// Dir is the run directory (certificates, kubeconfig, etcd data, logs,
	// PID files, env.json). Empty: a new temporary directory, removed by Stop.
	Dir string
	// BinDir holds the binaries; default DefaultBinDir().
	BinDir string
	// StagesDir holds the kwok stage files; default DefaultStagesDir(BinDir).
	StagesDir string

	// Without* leave out a component. Without the controller manager the
	// ServiceAccount admission plugin is disabled (no default SAs exist).
	WithoutControllerManager bool
	WithoutScheduler         bool
	WithoutKwok              bool

	// NodeName of the kwok fake node; default DefaultNodeName.
	NodeName string

	// Detach starts the processes in their own session so that they outlive
	// the calling process (the CLI). Otherwise they get SIGKILL when the
	// calling process dies (tests).
	Detach bool

	// Timeout bounds the whole start-up; default 2 minutes.
	Timeout time.Duration

	// ExtraAPIServerArgs are appended to the kube-apiserver command line.
	ExtraAPIServerArgs []string

	// Logf receives progress messages; nil discards them.
	Logf func(format string, args ...any)
}

type staticToken struct{ Token, User, UID, Groups string }

// Env is a running control plane.
type Env struct {
	Dir          string `json:"dir"`
	Kubeconfig   string `json:"kubeconfig"`
	APIServerURL string `json:"apiServerURL"`
	EtcdURL      string `json:"etcdURL"`
	BinDir       string `json:"binDir"`
	// NodeName is the kwok node ("" without kwok).
	NodeName string `json:"nodeName,omitempty"`
	// AdminToken authenticates as a member of system:masters; UserToken as
	// UserName, a user without any RBAC permission (for authorization tests).
	AdminToken string    `json:"adminToken"`
	UserToken  string    `json:"userToken"`
	UserName   string    `json:"userName"`
	Processes  []Process `json:"processes"`
	StartedAt  time.Time `json:"startedAt"`
	// RemoveDir is set when Start created Dir itself; Stop then deletes it.
	RemoveDir bool `json:"removeDir,omitempty"`

	detached bool
	logf     func(string, ...any)
	mu       sync.Mutex
	running  []*running
}

// UserGroup is the group of Env.UserName.
const UserGroup = "brokkr:testers"

// Start starts a control plane as configured by opts and returns once the
// apiserver is ready and, with kwok, the fake node is Ready. On error
// everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	began := time.Now()
	if opts.BinDir == "" {
		opts.BinDir = DefaultBinDir()
	}
	if opts.StagesDir == "" {
		opts.StagesDir = DefaultStagesDir(opts.BinDir)
	}
	if err := CheckBinaries(opts.BinDir, opts.StagesDir); err != nil {
		return nil, err
	}
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	removeDir := false
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "brokkr-testenv-")
		if err != nil {
			return nil, err
		}
		opts.Dir, removeDir = d, true
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}

	env = &Env{
		Dir:        dir,
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
		BinDir:     opts.BinDir,
		AdminToken: randomToken(),
		UserToken:  randomToken(),
		UserName:   "brokkr-tester",
		StartedAt:  began,
		RemoveDir:  removeDir,
		detached:   opts.Detach,
		logf:       logf,
	}
	defer func() {
		if err != nil {
			_ = env.Stop()
			env = nil
		}
	}()

	ports, err := testsupport.FreePorts(5)
	if err != nil {
		return env, err
	}
	etcdPort, etcdPeerPort, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	env.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	env.APIServerURL = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	pki := filepath.Join(dir, "pki")
	ca, admin, err := writePKI(pki, []staticToken{
		{Token: env.AdminToken, User: "brokkr-admin-token", UID: "brokkr-admin-token", Groups: "system:masters"},
		{Token: env.UserToken, User: env.UserName, UID: env.UserName, Groups: UserGroup},
	})
	if err != nil {
		return env, err
	}
	if err := writeKubeconfig(env.Kubeconfig, env.APIServerURL, ca.cert, admin.cert, admin.key); err != nil {
		return env, err
	}
	if err := env.save(); err != nil {
		return env, err
	}
	p := func(name string) string { return filepath.Join(pki, name) }
	bin := func(name string) string { return filepath.Join(opts.BinDir, name) }

	// etcd
	peer := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	etcd, err := env.startProcess(Etcd, bin(Etcd), []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(dir, "etcd-data"),
		"--listen-client-urls=" + env.EtcdURL,
		"--advertise-client-urls=" + env.EtcdURL,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=testenv=" + peer,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}, nil)
	if err != nil {
		return env, err
	}
	if err := waitHTTP(ctx, etcd, nil, env.EtcdURL+"/health"); err != nil {
		return env, fmt.Errorf("etcd: %w", err)
	}
	logf("etcd ready on %s (%s)", env.EtcdURL, time.Since(began).Round(time.Millisecond))

	// kube-apiserver
	apiArgs := []string{
		"--etcd-servers=" + env.EtcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + p(servingCrtFile),
		"--tls-private-key-file=" + p(servingKeyFile),
		"--client-ca-file=" + p(caCertFile),
		"--token-auth-file=" + p(tokenFile),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p(saPubFile),
		"--service-account-signing-key-file=" + p(saKeyFile),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
	}
	if opts.WithoutControllerManager {
		apiArgs = append(apiArgs, "--disable-admission-plugins=ServiceAccount")
	}
	apiArgs = append(apiArgs, opts.ExtraAPIServerArgs...)
	apiserver, err := env.startProcess(APIServer, bin(APIServer), apiArgs, nil)
	if err != nil {
		return env, err
	}
	tlsClient, err := env.httpClient()
	if err != nil {
		return env, err
	}
	if err := waitHTTP(ctx, apiserver, tlsClient, env.APIServerURL+"/readyz"); err != nil {
		return env, fmt.Errorf("kube-apiserver: %w", err)
	}
	logf("kube-apiserver ready on %s (%s)", env.APIServerURL, time.Since(began).Round(time.Millisecond))

	var waits []func() error
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- loopback health probe of a throwaway control plane
	componentArgs := func(port int, name string) []string {
		return []string{
			"--kubeconfig=" + env.Kubeconfig,
			"--authentication-kubeconfig=" + env.Kubeconfig,
			"--authorization-kubeconfig=" + env.Kubeconfig,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(dir, name+"-certs"),
		}
	}
	if !opts.WithoutControllerManager {
		args := append(componentArgs(kcmPort, ControllerManager),
			"--service-account-private-key-file="+p(saKeyFile),
			"--root-ca-file="+p(caCertFile),
			"--cluster-signing-cert-file="+p(caCertFile),
			"--cluster-signing-key-file="+p(caKeyFile),
			"--service-cluster-ip-range="+serviceCIDR,
			"--use-service-account-credentials=false",
		)
		kcm, err := env.startProcess(ControllerManager, bin(ControllerManager), args, nil)
		if err != nil {
			return env, err
		}
		url := "https://127.0.0.1:" + strconv.Itoa(kcmPort) + "/healthz"
		waits = append(waits, func() error { return waitHTTP(ctx, kcm, insecure, url) })
	}
	if !opts.WithoutScheduler {
		sched, err := env.startProcess(Scheduler, bin(Scheduler), componentArgs(schedPort, Scheduler), nil)
		if err != nil {
			return env, err
		}
		url := "https://127.0.0.1:" + strconv.Itoa(schedPort) + "/healthz"
		waits = append(waits, func() error { return waitHTTP(ctx, sched, insecure, url) })
	}
	if !opts.WithoutKwok {
		env.NodeName = opts.NodeName
		args := []string{
			"--kubeconfig=" + env.Kubeconfig,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
			"--cidr=" + podCIDR,
			"--node-ip=10.244.0.1",
		}
		for _, f := range StageFiles {
			args = append(args, "--config="+filepath.Join(opts.StagesDir, f))
		}
		kwokWork := filepath.Join(dir, "kwok")
		if err := os.MkdirAll(kwokWork, 0o755); err != nil {
			return env, err
		}
		// KWOK_WORKDIR keeps a developer's ~/.kwok/kwok.yaml out of the way.
		kwok, err := env.startProcess(Kwok, bin(Kwok), args, []string{"KWOK_WORKDIR=" + kwokWork})
		if err != nil {
			return env, err
		}
		waits = append(waits, func() error { return env.createAndWaitNode(ctx, kwok) })
	}
	if err := env.save(); err != nil {
		return env, err
	}
	errs := make([]error, len(waits))
	var wg sync.WaitGroup
	for i, w := range waits {
		wg.Go(func() { errs[i] = w() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return env, err
	}
	logf("control plane ready in %s (dir %s)", time.Since(began).Round(time.Millisecond), dir)
	return env, nil
}

// prepareDir creates dir, refusing to reuse one whose recorded processes are
// still alive, and removes what a previous run left behind.
func prepareDir(dir string) error {
	if old, err := Load(dir); err == nil {
		for _, p := range old.Processes {
			if Alive(p.PID, p.Binary) {
				return fmt.Errorf("testenv: %s (pid %d) from a previous run is still running in %s; stop it first", p.Name, p.PID, dir)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"etcd-data", "pki", "logs", "kwok", "kubeconfig", stateFile,
		"apiserver-certs", ControllerManager + "-certs", Scheduler + "-certs"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, n := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok} {
		_ = os.Remove(filepath.Join(dir, n+".pid"))
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitHTTP polls url until it answers 200, r exits, or ctx ends.
func waitHTTP(ctx context.Context, r *running, client *http.Client, url string) error {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	var last string
	for {
		if done, werr := r.exited(); done {
			return r.exitError(werr)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %s (last: %s); log %s:\n%s", r.Name, ctx.Err(), last, r.Log, tail(r.Log, 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *Env) createAndWaitNode(ctx context.Context, kwok *running) error {
	cs, err := e.Clientset()
	if err != nil {
		return err
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        e.NodeName,
			Annotations: map[string]string{KwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": e.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24", PodCIDRs: []string{"10.244.0.0/24"}},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    "amd64",
				OperatingSystem: "linux",
				KubeletVersion:  "fake",
			},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", e.NodeName, err)
	}
	for {
		if done, werr := kwok.exited(); done {
			return kwok.exitError(werr)
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, e.NodeName, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready: %w; kwok log %s:\n%s", e.NodeName, ctx.Err(), kwok.Log, tail(kwok.Log, 15))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func writeKubeconfig(path, server string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["brokkr-testenv"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["brokkr-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["brokkr-testenv"] = &clientcmdapi.Context{Cluster: "brokkr-testenv", AuthInfo: "brokkr-admin", Namespace: "default"}
	cfg.CurrentContext = "brokkr-testenv"
	return clientcmd.WriteToFile(*cfg, path)
}

func (e *Env) pem(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(e.Dir, "pki", name))
}

// RESTConfig returns an admin (system:masters) client configuration.
func (e *Env) RESTConfig() (*rest.Config, error) {
	ca, err := e.pem(caCertFile)
	if err != nil {
		return nil, err
	}
	cert, err := e.pem(adminCrtFile)
	if err != nil {
		return nil, err
	}
	key, err := e.pem(adminKeyFile)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            e.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca, CertData: cert, KeyData: key},
		QPS:             200,
		Burst:           400,
		UserAgent:       "brokkr-testenv",
	}, nil
}

// UserRESTConfig returns a configuration authenticating as UserName (group
// UserGroup), who has no RBAC permissions until a test grants some.
func (e *Env) UserRESTConfig() (*rest.Config, error) {
	ca, err := e.pem(caCertFile)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            e.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		BearerToken:     e.UserToken,
		QPS:             200,
		Burst:           400,
		UserAgent:       "brokkr-testenv",
	}, nil
}

// Clientset returns an admin clientset.
func (e *Env) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := e.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// KubectlPath is the kubectl binary matching the control plane.
func (e *Env) KubectlPath() string { return filepath.Join(e.BinDir, Kubectl) }

func (e *Env) httpClient() (*http.Client, error) {
	ca, err := e.pem(caCertFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(e.Dir, "pki", adminCrtFile), filepath.Join(e.Dir, "pki", adminKeyFile))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// Ready reports whether the apiserver answers /readyz with 200.
func (e *Env) Ready(ctx context.Context) error {
	c, err := e.httpClient()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.APIServerURL+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("readyz: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// Has reports whether the env runs the named component.
func (e *Env) Has(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.Processes {
		if p.Name == name {
			return true
		}
	}
	return false
}

// ProcessStatus is a process of the env and whether it is alive.
type ProcessStatus struct {
	Process
	Alive bool
}

// Status reports every recorded process.
func (e *Env) Status() []ProcessStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]ProcessStatus, 0, len(e.Processes))
	for _, p := range e.Processes {
		out = append(out, ProcessStatus{Process: p, Alive: Alive(p.PID, p.Binary)})
	}
	return out
}

// Stop terminates every process (SIGTERM, then SIGKILL after 10 s), confirms
// they are gone via /proc/PID/exe, removes the PID files and, if Start created
// the run directory, the directory. It is safe to call more than once and on
// an Env returned by Load (from another process).
func (e *Env) Stop() error {
	e.mu.Lock()
	procs := append([]Process(nil), e.Processes...)
	runningProcs := append([]*running(nil), e.running...)
	e.mu.Unlock()

	err := stopProcesses(procs, 10*time.Second)
	// Reap our own children so no zombie remains in this process.
	for _, r := range runningProcs {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
	}
	if err != nil {
		return err
	}
	for _, p := range procs {
		_ = os.Remove(filepath.Join(e.Dir, p.Name+".pid"))
	}
	if e.RemoveDir {
		return os.RemoveAll(e.Dir)
	}
	_ = os.Remove(filepath.Join(e.Dir, stateFile))
	return nil
}

func (e *Env) save() error {
	e.mu.Lock()
	data, err := json.MarshalIndent(e, "", "  ")
	e.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(e.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(e.Dir, stateFile))
}

// Load reads the state Start saved in dir (env.json), e.g. to stop a
// detached control plane from another process.
func Load(dir string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	e := &Env{}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return e, nil
}
