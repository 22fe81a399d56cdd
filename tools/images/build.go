package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BuildOptions says where and how to build.
type BuildOptions struct {
	Root     string // repository root (holds go.work)
	OutDir   string // <service>.tar files land here
	Version  string // org.opencontainers.image.version and the tag
	Revision string // org.opencontainers.image.revision
	Registry string // where the images are named to live (default DefaultRegistry): <registry>/brokkr-<service>:<version>
	// CACerts is the CA bundle copied to /etc/ssl/certs/ca-certificates.crt
	// (default: Debian's ca-certificates file).
	CACerts string
	Only    []string // image names; empty = all
	Log     io.Writer
}

// DefaultRegistry is the registry the charts' image.registry defaults to.
const DefaultRegistry = "ghcr.io/brokkr-go"

// DefaultCACerts is the bundle Debian's ca-certificates package maintains.
const DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"

// Built is one image written to disk.
type Built struct {
	Image Image
	Ref   string // name:tag inside the archive
	Path  string // docker-archive tarball
}

// Build compiles the selected services (static, CGO off, the spec's flags)
// and writes each as a docker-archive tarball (`docker load`, `podman load`,
// `crane push`, `ctr images import` all read it) at OutDir/<name>.tar.
func (s Spec) Build(ctx context.Context, o BuildOptions) ([]Built, error) {
	if o.Registry == "" {
		o.Registry = DefaultRegistry
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Revision == "" {
		o.Revision = "unknown"
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	selected, err := s.selected(o.Only)
	if err != nil {
		return nil, err
	}
	binDir, err := os.MkdirTemp("", "brokkr-imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	if err := s.compile(ctx, o.Root, binDir, selected, o.Log); err != nil {
		return nil, err
	}
	base, err := s.baseLayer(o.CACerts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	var out []Built
	for _, im := range selected {
		img, err := s.image(im, base, filepath.Join(binDir, im.Name), o)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Name, err)
		}
		ref, err := name.NewTag(fmt.Sprintf("%s/brokkr-%s:%s", o.Registry, im.Name, o.Version))
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Name, err)
		}
		path := filepath.Join(o.OutDir, im.Name+".tar")
		tmp := path + ".tmp"
		if err := tarball.WriteToFile(tmp, ref, img); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "image %s -> %s\n", ref, path)
		out = append(out, Built{Image: im, Ref: ref.String(), Path: path})
	}
	return out, nil
}

func (s Spec) selected(only []string) ([]Image, error) {
	if len(only) == 0 {
		return s.Images, nil
	}
	var out []Image
	for _, n := range only {
		im, ok := s.Find(n)
		if !ok {
			return nil, fmt.Errorf("unknown image %q (see %s)", n, SpecFile)
		}
		out = append(out, im)
	}
	return out, nil
}

// compile runs the same go build as build/Dockerfile's build stage.
func (s Spec) compile(ctx context.Context, root, binDir string, ims []Image, log io.Writer) error {
	args := []string{"build", "-trimpath", "-tags", strings.Join(s.BuildTags, ","), "-ldflags", s.LDFlags, "-o", binDir + "/"}
	for _, im := range ims {
		args = append(args, im.Cmd)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
	cmd.Env = append(cmd.Env, "GOARCH="+goarch())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	fmt.Fprintf(log, "go %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out.String())
	}
	return nil
}

// epoch keeps layers reproducible: same inputs, same digests.
var epoch = time.Unix(0, 0).UTC()

// baseLayer is the distroless-static-like root filesystem: CA bundle,
// passwd/group with root, nobody and nonroot, /tmp and the home directory.
func (s Spec) baseLayer(caFile string) (v1.Layer, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificates (install Debian's ca-certificates): %w", err)
	}
	uid, gid, _ := s.UIDGID()
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)
	group := "root:x:0:\nnobody:x:65534:\n" + fmt.Sprintf("nonroot:x:%d:\n", gid)
	return tarLayer([]entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, body: []byte("hosts: files dns\n")},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: uid, gid: gid},
		{name: "root/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
	})
}

func (s Spec) image(im Image, base v1.Layer, binary string, o BuildOptions) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	app, err := tarLayer([]entry{{name: strings.TrimPrefix(im.Entrypoint(), "/"), mode: 0o755, body: bin}})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goarch()
	cf.Created = v1.Time{Time: epoch}
	cf.Author = s.Source
	cf.Config.User = s.User
	cf.Config.Entrypoint = []string{im.Entrypoint()}
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Labels = s.Labels(im, o.Version, o.Revision)
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range im.Ports {
		cf.Config.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	name     string
	mode     int64
	dir      bool
	body     []byte
	uid, gid int
}

func tarLayer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: epoch, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}
