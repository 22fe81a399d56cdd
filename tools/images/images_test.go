package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadSpec(t *testing.T) (Spec, string) {
	t.Helper()
	root := repoRoot(t)
	s, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// The committed Dockerfile is exactly what the description renders, so the
// Docker build and `make images` cannot drift apart.
func TestDockerfileMatchesDescription(t *testing.T) {
	s, root := loadSpec(t)
	got, err := os.ReadFile(filepath.Join(root, DockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != s.Dockerfile() {
		t.Fatalf("%s is stale: run `make dockerfile`", DockerfilePath)
	}
	// And the rendering itself says what the description says, stage by stage.
	stages := parseStages(string(got))
	for _, im := range s.Images {
		st, ok := stages[im.Name]
		if !ok {
			t.Fatalf("no stage %q in the Dockerfile", im.Name)
		}
		if st["FROM"] != s.RuntimeImage || st["USER"] != s.User || st["ENTRYPOINT"] != fmt.Sprintf("[%q]", im.Entrypoint()) {
			t.Errorf("stage %s = %v", im.Name, st)
		}
		if !strings.Contains(st["COPY"], "/out/"+im.Name+" "+im.Entrypoint()) {
			t.Errorf("stage %s copies %q", im.Name, st["COPY"])
		}
		if !strings.Contains(stages["build"]["RUN"], im.Cmd) {
			t.Errorf("build stage does not compile %s", im.Cmd)
		}
	}
	if !strings.Contains(stages["build"]["FROM"], "golang:"+s.GoVersion) {
		t.Errorf("builder %q is not pinned to go %s", stages["build"]["FROM"], s.GoVersion)
	}
	gowork, _ := os.ReadFile(filepath.Join(root, "go.work"))
	if !regexp.MustCompile(`(?m)^go ` + regexp.QuoteMeta(s.GoVersion) + `$`).Match(gowork) {
		t.Errorf("go_version %s differs from go.work", s.GoVersion)
	}
}

// parseStages maps each stage name to its last instruction of each kind
// (RUN continuation lines joined).
func parseStages(df string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(df, "\\\n", " ")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		if kw == "FROM" {
			img, stage, _ := strings.Cut(rest, " AS ")
			cur = map[string]string{"FROM": img}
			out[stage] = cur
			continue
		}
		if cur != nil {
			cur[kw] = strings.Join(strings.Fields(rest), " ")
		}
	}
	return out
}

func TestSpecRejectsRootAndBadNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
	}{
		{"root user", func(s *Spec) { s.User = "0:0" }},
		{"unpinned builder", func(s *Spec) { s.BuilderImage = "golang:latest" }},
		{"cmd not named after image", func(s *Spec) { s.Images[0].Cmd = "./services/api/cmd/other" }},
		{"duplicate", func(s *Spec) { s.Images = append(s.Images, s.Images[0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := loadSpec(t)
			tc.mod(&s)
			if err := s.validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Builds every image as `make images` does, then runs each one's entrypoint
// from its own unpacked filesystem (chroot, no host libraries or shell) as
// the image's user, the way a runtime would.
func TestImagesBuildAndRunAsNonRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds six binaries")
	}
	if os.Geteuid() != 0 {
		t.Fatal("this test chroots into each image and switches to its uid: run it as root (the CI and dev VMs do)")
	}
	s, root := loadSpec(t)
	uid, gid, _ := s.UIDGID()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	built, err := s.Build(ctx, BuildOptions{Root: root, OutDir: out, Version: "1.2.3-test", Revision: "0123abc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != len(s.Images) {
		t.Fatalf("built %d images, want %d", len(built), len(s.Images))
	}
	for _, b := range built {
		t.Run(b.Image.Name, func(t *testing.T) {
			img, err := tarball.ImageFromPath(b.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != s.User {
				t.Errorf("User = %q, want %q", cf.Config.User, s.User)
			}
			if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != b.Image.Entrypoint() {
				t.Errorf("Entrypoint = %v", got)
			}
			for k, want := range map[string]string{
				"org.opencontainers.image.source":   s.Source,
				"org.opencontainers.image.revision": "0123abc",
				"org.opencontainers.image.version":  "1.2.3-test",
			} {
				if cf.Config.Labels[k] != want {
					t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], want)
				}
			}
			for _, p := range b.Image.Ports {
				if _, ok := cf.Config.ExposedPorts[fmt.Sprintf("%d/tcp", p)]; !ok {
					t.Errorf("port %d not exposed", p)
				}
			}
			rootfs := filepath.Join(t.TempDir(), "rootfs")
			files := unpack(t, mutate.Extract(img), rootfs)
			for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/env", "bin/ash"} {
				if files[shell] {
					t.Errorf("image contains %s", shell)
				}
			}
			for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", strings.TrimPrefix(b.Image.Entrypoint(), "/")} {
				if !files[want] {
					t.Errorf("image lacks %s", want)
				}
			}
			if b.Image.Name == "templating" {
				serveHealthz(t, rootfs, b.Image, uid, gid)
				return
			}
			cmd := chrooted(rootfs, b.Image, uid, gid, "--help")
			outb, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", b.Image.Entrypoint(), err, outb)
			}
			if !strings.Contains(string(outb), "usage") {
				t.Errorf("--help printed %q", outb)
			}
			runcHelp(t, rootfs, b.Image, cf.Config.User)
		})
	}
}

// runcHelp runs the entrypoint as a real OCI container (runc: namespaces,
// read-only root, the image's user) when runc is installed (Debian's runc
// works in the dev VM; the chroot run above does not need it).
func runcHelp(t *testing.T, rootfs string, im Image, user string) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Logf("runc not installed: ran from the unpacked filesystem only (apt-get install runc for the container run)")
		return
	}
	bundle := t.TempDir()
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	fmt.Sscanf(user, "%d:%d", &uid, &gid)
	proc := spec["process"].(map[string]any)
	proc["args"] = []string{im.Entrypoint(), "--help"}
	proc["terminal"] = false
	proc["cwd"] = "/home/nonroot"
	proc["user"] = map[string]any{"uid": uid, "gid": gid}
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	raw, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("brokkr-imagetest-%s-%d", im.Name, os.Getpid())
	cmd := exec.Command(runc, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	_ = exec.Command(runc, "delete", "--force", id).Run()
	if err != nil {
		t.Fatalf("runc run %s --help: %v\n%s", im.Name, err, out)
	}
	if !strings.Contains(string(out), "usage") {
		t.Errorf("runc: --help printed %q", out)
	}
}

func chrooted(rootfs string, im Image, uid, gid int, args ...string) *exec.Cmd {
	cmd := exec.Command(im.Entrypoint(), args...)
	cmd.Path = im.Entrypoint() // resolved inside the chroot, not on the host
	cmd.Dir = "/home/nonroot"
	cmd.Env = []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// serveHealthz starts the server from the image and checks /healthz and the
// kernel's view of the process's uid.
func serveHealthz(t *testing.T, rootfs string, im Image, uid, gid int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := chrooted(rootfs, im, uid, gid)
	cmd.Env = append(cmd.Env, "BROKKR__TEMPLATING__ADDR="+addr, "BROKKR__LOG__FORMAT=json")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "OK" {
				t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz from %s: %v\n%s", im.Name, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", uid, uid, uid, uid)
	if !strings.Contains(string(status), want) {
		t.Errorf("process is not running as %d:\n%s", uid, status)
	}
}

// unpack writes a flattened image filesystem to dir, keeping modes and
// owners, and returns the set of regular files and directories.
func unpack(t *testing.T, rc io.ReadCloser, dir string) map[string]bool {
	t.Helper()
	defer rc.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The rootfs's parents must be searchable by the image's user only
	// until chroot; chroot happens as root, so 0700 temp dirs are fine.
	files := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			t.Fatalf("bad path %q in image", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			files[name] = true // symlinks etc.: recorded (a /bin/sh link counts), not created
			continue
		}
		if err := os.Chown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm|sticky(h.Mode)); err != nil {
			t.Fatal(err)
		}
		files[name] = true
	}
	return files
}

func sticky(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
