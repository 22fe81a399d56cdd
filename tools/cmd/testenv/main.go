// Command testenv starts and stops a detached local Kubernetes control plane
// (see tools/testenv/README.md).
//
//	testenv up     [--dir DIR] [--no-controller-manager] [--no-scheduler] [--no-kwok]
//	testenv down   [--dir DIR]
//	testenv status [--dir DIR]
//	testenv env    [--dir DIR]
//
// up prints KEY=VALUE lines (KUBECONFIG, KUBE_APISERVER, KUBECTL) on stdout
// and writes the same as export lines to DIR/env.sh; progress goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

const defaultDir = ".brokkr/testenv"

func usage() {
	fmt.Fprintf(os.Stderr, `usage: testenv <up|down|status|env> [flags]

  up      start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
          a kwok node detached, print KUBECONFIG=... lines and exit
  down    stop the processes recorded in --dir
  status  show the processes recorded in --dir and apiserver readiness
          (exit 0 running, 1 degraded, 3 not running)
  env     print the KEY=VALUE lines of a running control plane

Binaries come from %s (override: BROKKR_TESTENV_BIN);
build them with tools/testenv/build.sh.
`, testenv.DefaultBinDir())
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fl := flag.NewFlagSet("testenv "+cmd, flag.ExitOnError)
	dir := fl.String("dir", defaultDir, "run directory (state, kubeconfig, logs)")
	var code int
	switch cmd {
	case "up":
		noKCM := fl.Bool("no-controller-manager", false, "do not start kube-controller-manager")
		noSched := fl.Bool("no-scheduler", false, "do not start kube-scheduler")
		noKwok := fl.Bool("no-kwok", false, "do not start kwok (no node)")
		bin := fl.String("bin", "", "binary directory (default $BROKKR_TESTENV_BIN or the build.sh cache)")
		timeout := fl.Duration("timeout", 2*time.Minute, "start-up timeout")
		_ = fl.Parse(args)
		code = up(*dir, testenv.Options{
			BinDir:                   *bin,
			WithoutControllerManager: *noKCM,
			WithoutScheduler:         *noSched,
			WithoutKwok:              *noKwok,
			Timeout:                  *timeout,
		})
	case "down":
		_ = fl.Parse(args)
		code = down(*dir)
	case "status":
		_ = fl.Parse(args)
		code = status(*dir)
	case "env":
		_ = fl.Parse(args)
		code = printEnv(*dir)
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		code = 2
	}
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testenv: "+format+"\n", args...)
}

func envLines(e *testenv.Env) []string {
	return []string{
		"KUBECONFIG=" + e.Kubeconfig,
		"KUBE_APISERVER=" + e.APIServerURL,
		"KUBECTL=" + e.KubectlPath(),
	}
}

func emit(e *testenv.Env) error {
	var sh []byte
	for _, l := range envLines(e) {
		fmt.Println(l)
		sh = fmt.Appendf(sh, "export %s\n", l)
	}
	return os.WriteFile(filepath.Join(e.Dir, "env.sh"), sh, 0o644)
}

// running loads the env in dir and reports whether all its processes are
// alive and the apiserver is ready.
func running(dir string) (*testenv.Env, bool, error) {
	e, err := testenv.Load(dir)
	if err != nil {
		return nil, false, err
	}
	for _, p := range e.Status() {
		if !p.Alive {
			return e, false, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return e, e.Ready(ctx) == nil, nil
}

func up(dir string, opts testenv.Options) int {
	abs, err := filepath.Abs(dir)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if e, ok, err := running(abs); err == nil {
		if ok {
			logf("already running in %s (%s)", abs, e.APIServerURL)
			if err := emit(e); err != nil {
				logf("%v", err)
				return 1
			}
			return 0
		}
		logf("stopping the remains of a previous run in %s", abs)
		if err := e.Stop(); err != nil {
			logf("%v", err)
			return 1
		}
	}
	opts.Dir = abs
	opts.Detach = true
	opts.Logf = logf
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := testenv.Start(ctx, opts)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if err := emit(e); err != nil {
		logf("%v", err)
		return 1
	}
	logf("running; logs in %s, stop with: testenv down --dir %s", filepath.Join(abs, "logs"), dir)
	return 0
}

func down(dir string) int {
	e, err := testenv.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		logf("nothing recorded in %s", dir)
		return 0
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	began := time.Now()
	if err := e.Stop(); err != nil {
		logf("%v", err)
		return 1
	}
	logf("stopped %d processes in %s", len(e.Processes), time.Since(began).Round(time.Millisecond))
	return 0
}

func status(dir string) int {
	e, err := testenv.Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Printf("not running (no state in %s)\n", dir)
		return 3
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	alive := 0
	for _, p := range e.Status() {
		state := "stopped"
		if p.Alive {
			state = "running"
			alive++
		}
		fmt.Printf("%-24s pid %-8d %s\n", p.Name, p.PID, state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rerr := e.Ready(ctx)
	if rerr == nil {
		fmt.Printf("%-24s %s ready (up %s)\n", "apiserver", e.APIServerURL, time.Since(e.StartedAt).Round(time.Second))
	} else {
		fmt.Printf("%-24s %s not ready: %v\n", "apiserver", e.APIServerURL, rerr)
	}
	switch {
	case alive == 0:
		return 3
	case alive < len(e.Processes) || rerr != nil:
		return 1
	}
	for _, l := range envLines(e) {
		fmt.Println(l)
	}
	return 0
}

func printEnv(dir string) int {
	e, ok, err := running(dir)
	if err != nil || !ok {
		logf("no running control plane in %s (start one with: testenv up --dir %s)", dir, dir)
		return 3
	}
	for _, l := range envLines(e) {
		fmt.Println(l)
	}
	return 0
}
