package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one control-plane process started by Start.
type Process struct {
	Name   string   `json:"name"`
	PID    int      `json:"pid"`
	Binary string   `json:"binary"`
	Log    string   `json:"log"`
	Args   []string `json:"args,omitempty"`
}

// running is a process started by this Go process: done is closed once it has
// been reaped (so no zombie lingers in test binaries).
type running struct {
	Process
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (e *Env) startProcess(name, bin string, args, extraEnv []string) (*running, error) {
	logPath := filepath.Join(e.Dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "### %s %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = e.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), extraEnv...)
	if e.detached {
		// A new session: survives the CLI and Ctrl-C in the terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Own process group (Ctrl-C handling stays with the test binary), and
		// killed by the kernel if the test binary dies without cleaning up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	r := &running{
		Process: Process{Name: name, PID: cmd.Process.Pid, Binary: bin, Log: logPath, Args: args},
		cmd:     cmd,
		done:    make(chan struct{}),
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := os.WriteFile(filepath.Join(e.Dir, name+".pid"), []byte(strconv.Itoa(r.PID)+"\n"), 0o644); err != nil {
		return r, err
	}
	e.mu.Lock()
	e.Processes = append(e.Processes, r.Process)
	e.running = append(e.running, r)
	e.mu.Unlock()
	return r, nil
}

// exited reports whether r has terminated, with its wait error.
func (r *running) exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// exitError describes an early exit of r with the tail of its log.
func (r *running) exitError(werr error) error {
	return fmt.Errorf("%s exited during start-up (%v); last log lines of %s:\n%s", r.Name, werr, r.Log, tail(r.Log, 25))
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Alive reports whether pid is a live (not zombie) process running binary:
// /proc/PID/exe is readable only for live processes, and comparing its base
// name guards against PID reuse. binary may be empty to skip that check.
func Alive(pid int, binary string) bool {
	if pid <= 0 {
		return false
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return false
	}
	if binary == "" {
		return true
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	return filepath.Base(exe) == filepath.Base(binary)
}

// stopProcesses stops procs in tiers: the clients of the apiserver (KCM,
// scheduler, kwok) first, then kube-apiserver, then etcd (an apiserver whose
// etcd is gone hangs in its graceful shutdown). Each tier gets SIGTERM, up to
// grace to disappear, then SIGKILL.
func stopProcesses(procs []Process, grace time.Duration) error {
	tier := func(p Process) int {
		switch p.Name {
		case Etcd:
			return 2
		case APIServer:
			return 1
		}
		return 0
	}
	var errs []error
	for t := 0; t <= 2; t++ {
		var group []Process
		for _, p := range procs {
			if tier(p) == t {
				group = append(group, p)
			}
		}
		errs = append(errs, terminate(group, grace))
	}
	return errors.Join(errs...)
}

func terminate(procs []Process, grace time.Duration) error {
	var live []Process
	for _, p := range procs {
		if Alive(p.PID, p.Binary) {
			_ = syscall.Kill(p.PID, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	live = waitGone(live, grace)
	for _, p := range live {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	live = waitGone(live, 10*time.Second)
	var errs []error
	for _, p := range live {
		errs = append(errs, fmt.Errorf("%s (pid %d) is still running after SIGKILL", p.Name, p.PID))
	}
	return errors.Join(errs...)
}

func waitGone(procs []Process, d time.Duration) []Process {
	deadline := time.Now().Add(d)
	for {
		var live []Process
		for _, p := range procs {
			if Alive(p.PID, p.Binary) {
				live = append(live, p)
			}
		}
		if len(live) == 0 || time.Now().After(deadline) {
			return live
		}
		procs = live
		time.Sleep(20 * time.Millisecond)
	}
}
