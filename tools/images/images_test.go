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
	"reflect"
	"regexp"
	"strconv"
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
	// And the rendering itself says what the description says: each
	// --target gets, through the stages it builds on, the base image and the
	// config `make images` gives the same image, with and without build args.
	stages := parseStages(string(got))
	build := stages[builderStage]
	for _, im := range s.Images {
		if _, ok := stages[im.Name]; !ok {
			t.Fatalf("no stage %q in the Dockerfile", im.Name)
		}
		if !strings.Contains(stages[im.Name].last("COPY"), "--from="+builderStage+" /out/"+im.Name+" "+im.Entrypoint()) {
			t.Errorf("stage %s copies %q", im.Name, stages[im.Name].last("COPY"))
		}
		if !strings.Contains(build.last("RUN"), im.Cmd) {
			t.Errorf("build stage does not compile %s", im.Cmd)
		}
		for _, tc := range []struct {
			buildArgs map[string]string
			same      BuildOptions
		}{
			{nil, BuildOptions{Version: "dev", Revision: "unknown"}}, // Build's defaults
			{map[string]string{"VERSION": "1.2.3-test", "REVISION": "0123abc"}, BuildOptions{Version: "1.2.3-test", Revision: "0123abc"}},
		} {
			base, cfg := targetConfig(t, stages, im.Name, tc.buildArgs)
			if base != s.RuntimeImage {
				t.Errorf("--target %s is based on %q, want %q", im.Name, base, s.RuntimeImage)
			}
			if want := makeImagesConfig(t, s, im, tc.same); !reflect.DeepEqual(cfg, want) {
				t.Errorf("--target %s --build-arg %v:\n Dockerfile  %+v\n make images %+v", im.Name, tc.buildArgs, cfg, want)
			}
		}
	}
	if !strings.Contains(build.from, "golang:"+s.GoVersion) {
		t.Errorf("builder %q is not pinned to go %s", build.from, s.GoVersion)
	}
	gowork, _ := os.ReadFile(filepath.Join(root, "go.work"))
	if !regexp.MustCompile(`(?m)^go ` + regexp.QuoteMeta(s.GoVersion) + `$`).Match(gowork) {
		t.Errorf("go_version %s differs from go.work", s.GoVersion)
	}
}

type instruction struct{ kw, args string }

// stage is one FROM … AS name section: its parent (an image or an earlier
// stage) and its instructions in order (RUN continuation lines joined).
type stage struct {
	from string
	body []instruction
}

// last returns the arguments of the stage's last kw instruction.
func (st stage) last(kw string) string {
	for i := len(st.body) - 1; i >= 0; i-- {
		if st.body[i].kw == kw {
			return st.body[i].args
		}
	}
	return ""
}

func parseStages(df string) map[string]*stage {
	out := map[string]*stage{}
	var cur *stage
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(df, "\\\n", " ")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		if kw == "FROM" {
			from, name, _ := strings.Cut(rest, " AS ")
			cur = &stage{from: from}
			out[name] = cur
			continue
		}
		if cur != nil {
			cur.body = append(cur.body, instruction{kw, strings.Join(strings.Fields(rest), " ")})
		}
	}
	return out
}

// targetConfig is what `docker build --target name --build-arg k=v…` gives:
// the image at the root of the stage's FROM chain, and the config the chain
// sets (LABEL and EXPOSE add up; the nearest USER and ENTRYPOINT win). As in
// Docker, a stage sees only the ARGs it declares itself, so a $VERSION in a
// LABEL expands to "" unless that LABEL's stage declares ARG VERSION.
func targetConfig(t *testing.T, stages map[string]*stage, name string, buildArgs map[string]string) (string, imageConfig) {
	t.Helper()
	st := stages[name]
	base, cfg := st.from, imageConfig{Labels: map[string]string{}, ExposedPorts: map[string]struct{}{}}
	if _, ok := stages[st.from]; ok {
		base, cfg = targetConfig(t, stages, st.from, buildArgs)
	}
	args := map[string]string{}
	for _, in := range st.body {
		switch in.kw {
		case "ARG":
			k, def, _ := strings.Cut(in.args, "=")
			args[k] = def
			if v, ok := buildArgs[k]; ok {
				args[k] = v
			}
		case "LABEL":
			k, quoted, _ := strings.Cut(in.args, "=")
			v, err := strconv.Unquote(quoted)
			if err != nil {
				t.Fatalf("stage %s: LABEL %s: %v", name, in.args, err)
			}
			cfg.Labels[k] = os.Expand(v, func(arg string) string { return args[arg] })
		case "USER":
			cfg.User = in.args
		case "ENTRYPOINT":
			cfg.Entrypoint = nil
			if err := json.Unmarshal([]byte(in.args), &cfg.Entrypoint); err != nil {
				t.Fatalf("stage %s: ENTRYPOINT %s: %v", name, in.args, err)
			}
		case "EXPOSE":
			for _, port := range strings.Fields(in.args) {
				cfg.ExposedPorts[port+"/tcp"] = struct{}{}
			}
		}
	}
	return base, cfg
}

// imageConfig is the part of an image's config that build/Dockerfile sets
// itself (WorkingDir and Env come from its base image).
type imageConfig struct {
	User         string
	Entrypoint   []string
	Labels       map[string]string
	ExposedPorts map[string]struct{}
}

// makeImagesConfig is the imageConfig `make images` writes for im.
func makeImagesConfig(t *testing.T, s Spec, im Image, o BuildOptions) imageConfig {
	t.Helper()
	bin := filepath.Join(t.TempDir(), im.Name)
	if err := os.WriteFile(bin, []byte("not a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	base, err := tarLayer(nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.image(im, base, bin, o)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	return imageConfig{User: c.User, Entrypoint: c.Entrypoint, Labels: c.Labels, ExposedPorts: c.ExposedPorts}
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
		{"named like a shared stage", func(s *Spec) { s.Images[0].Name, s.Images[0].Cmd = "runtime", "./services/api/cmd/runtime" }},
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
