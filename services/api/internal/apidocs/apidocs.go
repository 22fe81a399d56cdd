// Package apidocs serves the public REST contract: the OpenAPI document at
// GET /docs/openapi.json and the Swagger UI at GET /swagger-ui, both without
// authentication, as the original broker does.
//
// The contract's source of truth is api-spec/openapi.yaml at the repository
// root. go:embed cannot reach outside this module, so openapi.yaml in this
// directory is a copy that `go generate ./...` refreshes, and
// TestSpecCopyUpToDate fails while the two differ.
//
// The Swagger UI assets in swagger/ are vendored from the npm package
// swagger-ui-dist by fetch-swagger-ui.sh (version pinned there);
// swagger/index.html and swagger/brokkr-init.js are ours.
package apidocs

//go:generate cp ../../../../api-spec/openapi.yaml openapi.yaml

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// Paths this package serves.
const (
	// SpecPath serves the OpenAPI document as JSON.
	SpecPath = "/docs/openapi.json"
	// UIPath serves the Swagger UI page.
	UIPath = "/swagger-ui"
	// UIAssetsRoute is the gin route of the UI's assets. Mount registers it in
	// addition to the spec's routes; a router-vs-spec parity test must allow it.
	UIAssetsRoute = UIPath + "/*filepath"
)

var (
	//go:embed openapi.yaml
	specYAML []byte

	//go:embed swagger
	swaggerFS embed.FS
)

// The spec converted to JSON once, at start-up.
var specJSON, specErr = yaml.YAMLToJSON(specYAML)

// SpecYAML returns the embedded OpenAPI document as written.
func SpecYAML() []byte { return bytes.Clone(specYAML) }

// SpecJSON returns the OpenAPI document as JSON.
func SpecJSON() ([]byte, error) {
	if specErr != nil {
		return nil, fmt.Errorf("apidocs: openapi.yaml: %w", specErr)
	}
	return bytes.Clone(specJSON), nil
}

// asset is one file served with a precomputed ETag.
type asset struct {
	name        string
	contentType string
	etag        string
	data        []byte
}

func newAsset(name string, data []byte) asset {
	sum := sha256.Sum256(data)
	return asset{name: name, contentType: contentType(name), data: data,
		etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// contentType is fixed per extension rather than taken from the host's
// mime.types, so responses do not depend on the machine.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	default: // LICENSE, NOTICE, VERSION, *.txt
		return "text/plain; charset=utf-8"
	}
}

// serve writes a with conditional-request support (If-None-Match → 304).
// Content is revalidated on every use, which is cheap and never stale.
func (a asset) serve(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Writer, c.Request, a.name, time.Time{}, bytes.NewReader(a.data))
}

// Mount registers GET /docs/openapi.json, GET /swagger-ui and
// GET /swagger-ui/*filepath on r. Mount on the root router: these routes need
// no authentication. /swagger-ui/ and /swagger-ui/index.html redirect to
// /swagger-ui, whose page refers to its assets relative to that path.
func Mount(r gin.IRoutes) {
	assets := map[string]asset{}
	_ = fs.WalkDir(swaggerFS, "swagger", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := swaggerFS.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "swagger/")
		assets[name] = newAsset(name, data)
		return nil
	})
	index := assets["index.html"]
	delete(assets, "index.html")

	r.GET(SpecPath, specHandler())
	r.GET(UIPath, index.serve)
	r.GET(UIAssetsRoute, func(c *gin.Context) {
		name := strings.TrimPrefix(c.Param("filepath"), "/")
		if name == "" || name == "index.html" {
			// A relative Location (resolved by the client) keeps working
			// behind a proxy that adds a path prefix.
			c.Header("Location", "../swagger-ui")
			c.Status(http.StatusFound)
			return
		}
		a, ok := assets[name]
		if !ok {
			c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": "Not found"})
			return
		}
		a.serve(c)
	})
}

func specHandler() gin.HandlerFunc {
	if specErr != nil {
		err := fmt.Errorf("apidocs: openapi.yaml: %w", specErr)
		return func(c *gin.Context) {
			_ = c.Error(err)
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "OpenAPI document unavailable"})
		}
	}
	return newAsset("openapi.json", specJSON).serve
}

// Route is one operation of the spec, with its path in gin syntax.
type Route struct {
	Method      string // GET, POST, PUT, DELETE, ...
	Path        string // gin style: /api/v1/agents/:id
	OperationID string
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

var templateParam = regexp.MustCompile(`\{([^{}/]+)\}`)

// GinPath converts an OpenAPI path template to gin syntax: {id} → :id.
func GinPath(openAPIPath string) string {
	return templateParam.ReplaceAllString(openAPIPath, ":$1")
}

// Routes lists every operation in the spec, sorted by path then method, so a
// test can compare the api's router with the contract.
func Routes() ([]Route, error) {
	raw, err := SpecJSON()
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("apidocs: decode spec: %w", err)
	}
	var out []Route
	for p, item := range doc.Paths {
		for _, m := range httpMethods {
			op, ok := item[m]
			if !ok {
				continue
			}
			var meta struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(op, &meta); err != nil {
				return nil, fmt.Errorf("apidocs: %s %s: %w", strings.ToUpper(m), p, err)
			}
			out = append(out, Route{Method: strings.ToUpper(m), Path: GinPath(p), OperationID: meta.OperationID})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out, nil
}
