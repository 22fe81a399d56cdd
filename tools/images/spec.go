// Package images builds Brokkr's container images without a Docker engine
// and renders build/Dockerfile, both from build/images.yaml, so the two ways
// of building an image cannot drift apart.
package images

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Spec is build/images.yaml.
type Spec struct {
	GoVersion    string   `json:"go_version"`
	BuilderImage string   `json:"builder_image"`
	RuntimeImage string   `json:"runtime_image"`
	Source       string   `json:"source"`
	User         string   `json:"user"`
	BuildTags    []string `json:"build_tags"`
	LDFlags      string   `json:"ldflags"`
	Images       []Image  `json:"images"`
}

// Image is one service's image.
type Image struct {
	Name        string `json:"name"`
	Cmd         string `json:"cmd"`
	Ports       []int  `json:"ports"`
	Description string `json:"description"`
}

// Entrypoint is where the binary lives inside the image.
func (i Image) Entrypoint() string { return "/usr/local/bin/" + i.Name }

// SpecFile is the description's path relative to the repository root.
const SpecFile = "build/images.yaml"

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Load reads and validates build/images.yaml under root.
func Load(root string) (Spec, error) {
	raw, err := os.ReadFile(filepath.Join(root, SpecFile))
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	if err := yaml.UnmarshalStrict(raw, &s); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", SpecFile, err)
	}
	return s, s.validate()
}

func (s Spec) validate() error {
	var errs []error
	if s.GoVersion == "" || !strings.Contains(s.BuilderImage, ":"+s.GoVersion) {
		errs = append(errs, fmt.Errorf("builder_image %q must be pinned to go_version %q", s.BuilderImage, s.GoVersion))
	}
	if s.RuntimeImage == "" || s.Source == "" {
		errs = append(errs, errors.New("runtime_image and source are required"))
	}
	if _, _, err := s.UIDGID(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for _, im := range s.Images {
		if !nameRE.MatchString(im.Name) || seen[im.Name] {
			errs = append(errs, fmt.Errorf("image name %q must be unique and match %s", im.Name, nameRE))
		}
		seen[im.Name] = true
		if im.Name == builderStage || im.Name == runtimeStage {
			errs = append(errs, fmt.Errorf("image name %q is taken by a shared stage of %s", im.Name, DockerfilePath))
		}
		if !strings.HasPrefix(im.Cmd, "./") {
			errs = append(errs, fmt.Errorf("image %s: cmd %q must be a ./ package path", im.Name, im.Cmd))
		}
		// go build -o dir/ names the binary after the package directory.
		if filepath.Base(im.Cmd) != im.Name {
			errs = append(errs, fmt.Errorf("image %s: cmd %q must end in /%s", im.Name, im.Cmd, im.Name))
		}
	}
	if len(s.Images) == 0 {
		errs = append(errs, errors.New("no images"))
	}
	return errors.Join(errs...)
}

// UIDGID parses User ("65532:65532"); root is refused.
func (s Spec) UIDGID() (uid, gid int, err error) {
	if _, err := fmt.Sscanf(s.User, "%d:%d", &uid, &gid); err != nil {
		return 0, 0, fmt.Errorf("user %q must be uid:gid", s.User)
	}
	if uid == 0 || gid == 0 {
		return 0, 0, fmt.Errorf("user %q: images must not run as root", s.User)
	}
	return uid, gid, nil
}

// Find returns the image called name.
func (s Spec) Find(name string) (Image, bool) {
	for _, im := range s.Images {
		if im.Name == name {
			return im, true
		}
	}
	return Image{}, false
}

// Labels are the OCI annotations every image carries: the build's, which all
// images share, and the image's own.
func (s Spec) Labels(im Image, version, revision string) map[string]string {
	labels := s.BuildLabels(version, revision)
	maps.Copy(labels, im.Labels())
	return labels
}

// BuildLabels are the OCI annotations every image shares: where it comes
// from and which build of it it is.
func (s Spec) BuildLabels(version, revision string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   s.Source,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": revision,
	}
}

// Labels are the OCI annotations that name and describe this image.
func (i Image) Labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "brokkr-" + i.Name,
		"org.opencontainers.image.description": i.Description,
	}
}

// FindRoot walks up from dir to the directory holding go.work.
func FindRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
	}
}
