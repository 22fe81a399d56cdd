package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

// procCPU returns utime+stime of pid in clock ticks.
func procCPU(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return ut + st, nil
}

// procStatus returns a "VmRSS"-style field of /proc/PID/status in KiB.
func procStatus(pid int, field string) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkAgentIdle runs the agent binary (default settings: heartbeat
// every 10 s, target-state long-poll 30 s, health every 60 s plus the pod
// watch, diagnostics poll every 10 s, drift every 300 s) against the real
// broker with one deployment object of 100 objects (a namespace, 96
// ConfigMaps, 2 Services and a Deployment of 2 Pods), waits until it is
// applied and its health reported, then measures the process's CPU time
// and RSS over BROKKR_BENCH_IDLE_SECONDS (default 60) from /proc.
func BenchmarkAgentIdle(b *testing.B) {
	window := 60 * time.Second
	if v, err := strconv.Atoi(os.Getenv("BROKKR_BENCH_IDLE_SECONDS")); err == nil && v > 0 {
		window = time.Duration(v) * time.Second
	}
	br := startBroker(b)
	env := testenv.ForTest(b)
	dir := b.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/brokkr-go/brokkr/services/agent/cmd/agent").CombinedOutput()
	if err != nil {
		b.Fatalf("building the agent: %v\n%s", err, out)
	}
	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	br.call(b, http.MethodPost, "/agents", map[string]string{"name": "idle", "cluster_name": "bench"}, &created)
	var st struct {
		ID uuid.UUID `json:"id"`
	}
	br.call(b, http.MethodPost, "/stacks", map[string]any{"name": "idle"}, &st)
	br.call(b, http.MethodPost, "/agents/"+created.Agent.ID.String()+"/targets", map[string]any{"stack_id": st.ID}, nil)
	ns := "idle-" + uuid.NewString()[:8]
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns)
	for i := range 96 {
		fmt.Fprintf(&yaml, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%02d, namespace: %s}\ndata: {i: \"%d\"}\n", i, ns, i)
	}
	for i := range 2 {
		fmt.Fprintf(&yaml, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n", i, ns)
	}
	fmt.Fprintf(&yaml, "---\n"+`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
`, ns)
	var do struct {
		ID uuid.UUID `json:"id"`
	}
	br.call(b, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects", map[string]any{"yaml_content": yaml.String()}, &do)
	b.Cleanup(func() {
		cs, _ := env.Clientset()
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	healthPort := strings.Split(freePort(b), ":")[1]
	cmd := exec.Command(filepath.Join(dir, "agent"))
	cmd.Env = append(os.Environ(),
		"BROKKR__AGENT__BROKER_URL="+br.url, "BROKKR__AGENT__PAK="+created.InitialPAK,
		"BROKKR__AGENT__AGENT_NAME=idle", "BROKKR__AGENT__CLUSTER_NAME=bench",
		"BROKKR__AGENT__KUBECONFIG_PATH="+env.Kubeconfig, "BROKKR__AGENT__HEALTH_PORT="+healthPort,
		"BROKKR__AGENT__OUTBOX_DIR="+filepath.Join(dir, "outbox"), "BROKKR__LOG__LEVEL=info", "BROKKR__LOG__FORMAT=json")
	logPath := filepath.Join(dir, "agent.log")
	logf, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait(); logf.Close() })

	// Applied and reported healthy with both Pods ready.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var v healthView
		br.call(b, http.MethodGet, "/deployment-objects/"+do.ID.String()+"/health", nil, &v)
		if v.OverallStatus == "healthy" && v.HealthRecords[0].Summary.PodsReady == 2 {
			break
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(logPath)
			b.Fatalf("not healthy: %+v\n%s", v, tail(string(data), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}

	pid := cmd.Process.Pid
	ticks := int64(100) // USER_HZ on Linux
	for b.Loop() {
		c0, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		time.Sleep(window)
		c1, _ := procCPU(pid)
		elapsed := time.Since(start)
		cpu := time.Duration(c1-c0) * time.Second / time.Duration(ticks)
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "%cpu")
		b.ReportMetric(float64(cpu.Milliseconds())/elapsed.Minutes(), "cpu-ms/min")
		b.ReportMetric(float64(procStatus(pid, "VmRSS"))/1024, "rss-MiB")
		b.ReportMetric(float64(procStatus(pid, "VmHWM"))/1024, "peak-rss-MiB")
	}
}
