package images

import (
	"fmt"
	"sort"
	"strings"
)

// DockerfilePath is where the rendered Dockerfile is committed.
const DockerfilePath = "build/Dockerfile"

// The Dockerfile's shared stages; no image may take their names.
const (
	builderStage = "build"
	runtimeStage = "runtime"
)

// Dockerfile renders build/Dockerfile from the spec: one builder stage that
// compiles every service exactly as Build does (same flags, tags, CGO off),
// one runtime stage with what every image shares (distroless static
// :nonroot, the build's labels, the non-root user), then one final stage per
// service on top of it, selected with `docker build --target <service>`.
func (s Spec) Dockerfile() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# syntax=docker/dockerfile:1")
	p("# GENERATED from build/images.yaml by `make dockerfile`; do not edit.")
	p("# tools/images tests that this file matches the description, and `make images`")
	p("# builds the same images without a Docker engine (see docs/install.md).")
	p("#")
	p("#   docker build -f build/Dockerfile --target api \\")
	p("#     --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) \\")
	p("#     -t brokkr-api:dev .")
	p("")
	p("FROM %s AS %s", s.BuilderImage, builderStage)
	p("WORKDIR /src")
	p("ENV CGO_ENABLED=0 GOOS=linux GOFLAGS=-buildvcs=false GOTOOLCHAIN=local")
	p("COPY . .")
	p("RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \\")
	p("    go build -trimpath -tags %s -ldflags %q -o /out/ \\", strings.Join(s.BuildTags, ","), s.LDFlags)
	for i, im := range s.Images {
		sep := " \\"
		if i == len(s.Images)-1 {
			sep = ""
		}
		p("      %s%s", im.Cmd, sep)
	}
	p("")
	p("# The service stages inherit LABEL and USER from here. The ARGs must be")
	p("# declared in this stage, which expands them; --build-arg reaches it")
	p("# whichever service is the --target.")
	p("FROM %s AS %s", s.RuntimeImage, runtimeStage)
	p("ARG VERSION=dev")
	p("ARG REVISION=unknown")
	writeLabels(p, s.BuildLabels("$VERSION", "$REVISION"))
	p("USER %s", s.User)
	for _, im := range s.Images {
		p("")
		p("FROM %s AS %s", runtimeStage, im.Name)
		writeLabels(p, im.Labels())
		p("COPY --from=%s /out/%s %s", builderStage, im.Name, im.Entrypoint())
		for _, port := range im.Ports {
			p("EXPOSE %d", port)
		}
		p("ENTRYPOINT [%q]", im.Entrypoint())
	}
	return b.String()
}

// writeLabels writes one LABEL line per key, sorted so the file is stable.
func writeLabels(p func(string, ...any), labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p("LABEL %s=%q", k, labels[k])
	}
}
