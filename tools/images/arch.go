package images

import (
	"os"
	"runtime"
)

// goarch is the architecture the binaries are built for: $GOARCH, else the
// host's. It is passed to go build and recorded in the image config.
func goarch() string {
	if a := os.Getenv("GOARCH"); a != "" {
		return a
	}
	return runtime.GOARCH
}
