// Command imagebuild builds Brokkr's container images without a Docker
// engine (go-containerregistry) and renders build/Dockerfile, both from
// build/images.yaml.
//
//	imagebuild build [-out .brokkr/images] [-version v] [-revision sha] [-registry r] [name...]
//	imagebuild dockerfile        print build/Dockerfile
//	imagebuild list              print the image names
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/brokkr-go/brokkr/tools/images"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	wd, _ := os.Getwd()
	root, err := images.FindRoot(wd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	spec, err := images.Load(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if len(args) == 0 {
		args = []string{"build"}
	}
	switch args[0] {
	case "dockerfile":
		fmt.Print(spec.Dockerfile())
		return 0
	case "list":
		for _, im := range spec.Images {
			fmt.Println(im.Name)
		}
		return 0
	case "build":
	default:
		fmt.Fprintf(os.Stderr, "usage: imagebuild build|dockerfile|list\n")
		return 64
	}
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	out := fs.String("out", filepath.Join(root, ".brokkr", "images"), "output directory")
	version := fs.String("version", gitOr(root, "dev", "describe", "--tags", "--always", "--dirty"), "image version (tag and label)")
	revision := fs.String("revision", gitOr(root, "unknown", "rev-parse", "HEAD"), "source revision label")
	registry := fs.String("registry", images.DefaultRegistry, "registry part of the image names (<registry>/brokkr-<service>:<version>)")
	ca := fs.String("ca-certs", images.DefaultCACerts, "CA bundle to ship")
	if err := fs.Parse(args[1:]); err != nil {
		return 64
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_, err = spec.Build(ctx, images.BuildOptions{
		Root: root, OutDir: *out, Version: *version, Revision: *revision,
		Registry: *registry, CACerts: *ca, Only: fs.Args(), Log: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func gitOr(root, fallback string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return fallback
	}
	// Tags may not contain '+' or '/'.
	return strings.NewReplacer("+", "-", "/", "-").Replace(strings.TrimSpace(string(out)))
}
