package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Proc is a private redis-server (or sentinel) process on a free loopback
// port, started by a test and killed when it ends. Tests that take Redis
// away (failover, cluster) use these, never the shared server.
type Proc struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Kill ends the process with SIGKILL (a crash: no shutdown, no save) and
// waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Client returns a plain client on the process, closed when t ends.
func (p *Proc) Client(t testing.TB) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: p.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serverBinary is Debian's redis-server; tests that need private servers
// skip without it (and with -short).
func serverBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("redistest: Redis tests skipped with -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redistest: redis-server is not installed (apt-get install redis-server)")
	}
	return bin
}

// start runs redis-server with the config file text conf (port, bind and
// dir are added) and waits until it answers PING.
func start(t testing.TB, name, conf string, sentinel bool) *Proc {
	t.Helper()
	bin := serverBinary(t)
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	port := testsupport.FreePort(t)
	full := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n%s", port, dir, conf)
	file := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(file, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{file}
	if sentinel {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command(bin, args...)
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, name+".log")); err == nil {
				t.Logf("%s log:\n%s", name, tail(string(b), 30))
			}
		}
	})
	c := goredis.NewClient(&goredis.Options{Addr: p.Addr, MaxRetries: -1})
	defer c.Close()
	Eventually(t, 10*time.Second, name+" answers PING", func(ctx context.Context) error {
		return c.Ping(ctx).Err()
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Eventually polls f (each call bounded to a second) until it returns nil
// or timeout passes, then fails t with f's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SentinelMaster is the name the sentinels of a SentinelSet monitor.
const SentinelMaster = "brokkr-test"

// SentinelSet is a primary, one replica and three sentinels (quorum 2)
// that fail over one second after the primary stops answering.
type SentinelSet struct {
	Primary, Replica *Proc
	Sentinels        []*Proc
}

// StartSentinel starts a SentinelSet and waits until the replica is in
// sync and the sentinels know the replica and each other, so a failover
// can succeed as soon as the test kills the primary.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	s := &SentinelSet{}
	s.Primary = start(t, "primary", "", false)
	host, port, _ := net.SplitHostPort(s.Primary.Addr)
	s.Replica = start(t, "replica", fmt.Sprintf("replicaof %s %s\n", host, port), false)
	rc := s.Replica.Client(t)
	Eventually(t, 15*time.Second, "replica in sync", func(ctx context.Context) error {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replication link not up")
		}
		return nil
	})
	conf := fmt.Sprintf("sentinel monitor %s %s %s 2\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 5000\n"+
		"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, host, port)
	for i := range 3 {
		s.Sentinels = append(s.Sentinels, start(t, fmt.Sprintf("sentinel%d", i), conf, true))
	}
	for _, sp := range s.Sentinels {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: sp.Addr})
		Eventually(t, 30*time.Second, "sentinel "+sp.Addr+" knows the replica and the other sentinels", func(ctx context.Context) error {
			m, err := sc.Master(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("num-slaves=%s num-other-sentinels=%s", m["num-slaves"], m["num-other-sentinels"])
			}
			return nil
		})
		_ = sc.Close()
	}
	return s
}

// SentinelAddrs are the sentinels' addresses, for redis.sentinel_addrs.
func (s *SentinelSet) SentinelAddrs() []string {
	var a []string
	for _, p := range s.Sentinels {
		a = append(a, p.Addr)
	}
	return a
}

// MasterAddr is the primary the first live sentinel names.
func (s *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, p := range s.Sentinels {
		sc := goredis.NewSentinelClient(&goredis.Options{Addr: p.Addr})
		a, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
		_ = sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the primary: %v", last)
}

// Cluster is a Redis Cluster of private masters (no replicas).
type Cluster struct {
	Nodes []*Proc
}

// StartCluster starts masters cluster-enabled servers, joins them with
// `redis-cli --cluster create` and waits until every slot is served.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redistest: redis-cli is not installed")
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for i := range masters {
		p := start(t, fmt.Sprintf("node%d", i), "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 2000\n", false)
		c.Nodes = append(c.Nodes, p)
		args = append(args, p.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, p := range c.Nodes {
		pc := p.Client(t)
		Eventually(t, 30*time.Second, "cluster state ok on "+p.Addr, func(ctx context.Context) error {
			info, err := pc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("cluster_state not ok")
			}
			return nil
		})
	}
	return c
}

// Addrs are the nodes' addresses, for redis.cluster_addrs.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, p := range c.Nodes {
		a = append(a, p.Addr)
	}
	return a
}
