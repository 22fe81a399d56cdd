// Package charts holds the tests of the Helm charts under deployments/helm
// and of skaffold.yaml: lint, render, server-side dry-run, install, upgrade
// and uninstall against the local kube-apiserver (tools/testenv), with the
// helm and skaffold binaries built by tools/deploytools/build.sh.
package charts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// Tool returns the cached binary of tool (helm or skaffold), or an error
// that says how to build it.
func Tool(root, tool string) (string, error) {
	out, err := exec.Command(filepath.Join(root, "tools/deploytools/build.sh"), "--print-path", tool).Output()
	if err != nil {
		return "", fmt.Errorf("deploytools: %w", err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		by := "make test does"
		if tool == "skaffold" || tool == "helm3" {
			by = "make test-charts or make deploy-tools does"
		}
		return "", fmt.Errorf("%s is not built (%s missing): run tools/deploytools/build.sh %s (%s)", tool, p, tool, by)
	}
	return p, nil
}

// Run runs a binary and returns its stdout; the error carries stderr.
func Run(env []string, bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Decode splits a multi-document YAML stream into objects (empty documents
// dropped). It is strict: a key twice in one mapping is an error, as it is
// for skaffold's post-renderer and kubectl, though helm itself lets it pass.
func Decode(manifest string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := sigsyaml.UnmarshalStrict(doc, &m); err != nil {
			return nil, fmt.Errorf("%w in:\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}
