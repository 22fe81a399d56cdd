package images

import (
	"fmt"
	"sort"
	"strings"
)

// DockerfilePath is where the rendered Dockerfile is committed.
const DockerfilePath = "build/Dockerfile"

// Dockerfile renders build/Dockerfile from the spec: one builder stage that
// compiles every service exactly as Build does (same flags, tags, CGO off),
// then one final stage per service on distroless static :nonroot, selected
// with `docker build --target <service>`.
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
	p("FROM %s AS build", s.BuilderImage)
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
	for _, im := range s.Images {
		p("")
		p("FROM %s AS %s", s.RuntimeImage, im.Name)
		p("ARG VERSION=dev")
		p("ARG REVISION=unknown")
		labels := s.Labels(im, "$VERSION", "$REVISION")
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("LABEL %s=%q", k, labels[k])
		}
		p("COPY --from=build /out/%s %s", im.Name, im.Entrypoint())
		for _, port := range im.Ports {
			p("EXPOSE %d", port)
		}
		p("USER %s", s.User)
		p("ENTRYPOINT [%q]", im.Entrypoint())
	}
	return b.String()
}
