package gonja_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// The template examples of the Brokkr docs (the templates reference and
// how-to). The text extraction of the docs kept in
// testdata/seed_templates.json collapses runs of spaces, so the templates
// below are the docs' templates with normal 2-space YAML indentation;
// TestDocTemplatesMatchSeed checks they are the extracted templates up to
// leading whitespace, and TestSeedTemplatesRenderVerbatim renders the
// extracted text as stored.

const webServiceV1 = `apiVersion: v1
kind: Namespace
metadata:
  name: {{ namespace }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
  labels:
    app: {{ service_name }}
    managed-by: brokkr
spec:
  replicas: {{ replicas }}
  selector:
    matchLabels:
      app: {{ service_name }}
  template:
    metadata:
      labels:
        app: {{ service_name }}
    spec:
      containers:
      - name: {{ service_name }}
        image: {{ image_repository }}:{{ image_tag }}
        ports:
        - containerPort: {{ container_port }}
        resources:
          requests:
            cpu: {{ cpu_request }}
            memory: {{ memory_request }}
          limits:
            cpu: {{ cpu_limit }}
            memory: {{ memory_limit }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
spec:
  selector:
    app: {{ service_name }}
  ports:
  - port: 80
    targetPort: {{ container_port }}`

const webServiceV2 = `apiVersion: v1
kind: Namespace
metadata:
  name: {{ namespace }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
  labels:
    app: {{ service_name }}
    managed-by: brokkr
spec:
  replicas: {{ replicas }}
  selector:
    matchLabels:
      app: {{ service_name }}
  template:
    metadata:
      labels:
        app: {{ service_name }}
    spec:
      containers:
      - name: {{ service_name }}
        image: {{ image_repository }}:{{ image_tag }}
        ports:
        - containerPort: {{ container_port }}
        livenessProbe:
          httpGet:
            path: /healthz
            port: {{ container_port }}
          initialDelaySeconds: 10
          periodSeconds: 30
        resources:
          requests:
            cpu: {{ cpu_request }}
            memory: {{ memory_request }}
          limits:
            cpu: {{ cpu_limit }}
            memory: {{ memory_limit }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ service_name }}
  namespace: {{ namespace }}
spec:
  selector:
    app: {{ service_name }}
  ports:
  - port: 80
    targetPort: {{ container_port }}`

const nginxDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ name }}
  namespace: {{ namespace | default(value="default") }}
spec:
  replicas: {{ replicas | default(value=1) }}
  selector:
    matchLabels:
      app: {{ name }}
  template:
    metadata:
      labels:
        app: {{ name }}
    spec:
      containers:
      - name: nginx
        image: nginx:{{ version | default(value="latest") }}
        ports:
        - containerPort: 80`

const postgresqlDatabase = `apiVersion: v1
kind: Secret
metadata:
  name: {{ name }}-credentials
  namespace: {{ namespace }}
stringData:
  POSTGRES_USER: {{ username | default(value="postgres") }}
  POSTGRES_PASSWORD: {{ password }}
  POSTGRES_DB: {{ database }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
spec:
  ports:
  - port: 5432
  clusterIP: None
  selector:
    app: {{ name }}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
spec:
  serviceName: {{ name }}
  replicas: {{ replicas | default(value=1) }}
  selector:
    matchLabels:
      app: {{ name }}
  template:
    metadata:
      labels:
        app: {{ name }}
    spec:
      containers:
      - name: postgres
        image: postgres:{{ version | default(value="15") }}
        ports:
        - containerPort: 5432
        envFrom:
        - secretRef:
            name: {{ name }}-credentials
        volumeMounts:
        - name: data
          mountPath: /var/lib/postgresql/data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: {{ storage_size }}`

const referenceWebService = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ service_name }}
spec:
  replicas: {{ replicas }}`

// Expected renderings.

const tv1Frontend = `apiVersion: v1
kind: Namespace
metadata:
  name: frontend-app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  namespace: frontend-app
  labels:
    app: frontend
    managed-by: brokkr
spec:
  replicas: 3
  selector:
    matchLabels:
      app: frontend
  template:
    metadata:
      labels:
        app: frontend
    spec:
      containers:
      - name: frontend
        image: myregistry.example.com/frontend:v2.1.0
        ports:
        - containerPort: 3000
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 500m
            memory: 512Mi
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
  namespace: frontend-app
spec:
  selector:
    app: frontend
  ports:
  - port: 80
    targetPort: 3000`

const tv2Backend = `apiVersion: v1
kind: Namespace
metadata:
  name: backend-api
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: backend-api
  labels:
    app: api
    managed-by: brokkr
spec:
  replicas: 5
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: myregistry.example.com/api:v3.0.1
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 1000m
            memory: 1Gi
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: backend-api
spec:
  selector:
    app: api
  ports:
  - port: 80
    targetPort: 8080`

const tv3Frontend = `apiVersion: v1
kind: Namespace
metadata:
  name: frontend-app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  namespace: frontend-app
  labels:
    app: frontend
    managed-by: brokkr
spec:
  replicas: 3
  selector:
    matchLabels:
      app: frontend
  template:
    metadata:
      labels:
        app: frontend
    spec:
      containers:
      - name: frontend
        image: myregistry.example.com/frontend:v2.1.0
        ports:
        - containerPort: 3000
        livenessProbe:
          httpGet:
            path: /healthz
            port: 3000
          initialDelaySeconds: 10
          periodSeconds: 30
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: 500m
            memory: 512Mi
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
  namespace: frontend-app
spec:
  selector:
    app: frontend
  ports:
  - port: 80
    targetPort: 3000`

const tv7a = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
  namespace: production
spec:
  replicas: 3
  selector:
    matchLabels:
      app: my-nginx
  template:
    metadata:
      labels:
        app: my-nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80`

const tv7b = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      app: my-nginx
  template:
    metadata:
      labels:
        app: my-nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        ports:
        - containerPort: 80`

const tv8 = `apiVersion: v1
kind: Secret
metadata:
  name: orders-db-credentials
  namespace: production
stringData:
  POSTGRES_USER: postgres
  POSTGRES_PASSWORD: secure-password-here
  POSTGRES_DB: orders
---
apiVersion: v1
kind: Service
metadata:
  name: orders-db
  namespace: production
spec:
  ports:
  - port: 5432
  clusterIP: None
  selector:
    app: orders-db
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: orders-db
  namespace: production
spec:
  serviceName: orders-db
  replicas: 3
  selector:
    matchLabels:
      app: orders-db
  template:
    metadata:
      labels:
        app: orders-db
    spec:
      containers:
      - name: postgres
        image: postgres:15
        ports:
        - containerPort: 5432
        envFrom:
        - secretRef:
            name: orders-db-credentials
        volumeMounts:
        - name: data
          mountPath: /var/lib/postgresql/data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 100Gi`

type seedTemplate struct {
	TemplateContent      string `json:"template_content"`
	ParametersSchema     string `json:"parameters_schema"`
	SeedExpectedFrontend string `json:"seed_expected_frontend"`
}

// loadSeed reads testdata/seed_templates.json: the docs' template_content and
// parameters_schema strings, extracted verbatim from the Brokkr docs.
func loadSeed(t *testing.T) map[string]seedTemplate {
	t.Helper()
	b, err := os.ReadFile("testdata/seed_templates.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]seedTemplate
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func stripIndent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestDocTemplatesMatchSeed(t *testing.T) {
	seed := loadSeed(t)
	for name, tpl := range map[string]string{
		"web-service-v1":        webServiceV1,
		"web-service-v2":        webServiceV2,
		"nginx-deployment":      nginxDeployment,
		"postgresql-database":   postgresqlDatabase,
		"reference-web-service": referenceWebService,
	} {
		if got, want := stripIndent(tpl), stripIndent(seed[name].TemplateContent); got != want {
			t.Errorf("%s: transcription differs from the seed:\n%s\n--- seed ---\n%s", name, got, want)
		}
	}
	if got, want := stripIndent(tv1Frontend), stripIndent(seed["web-service-v1"].SeedExpectedFrontend); got != want {
		t.Errorf("TV1 expected output differs from the seed's tutorial output:\n%s\n--- seed ---\n%s", got, want)
	}
}

// instantiate runs the last steps of instantiation: apply the schema
// defaults and validate (docs/templates.md#schema-defaults), then render.
func instantiate(t *testing.T, schema, source string, params map[string]any) (string, []string, error) {
	t.Helper()
	v := jsonschema.New()
	effective, viols, err := v.Validate(schema, params)
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	if len(viols) > 0 {
		return "", template.ViolationStrings(viols), nil
	}
	p, _ := effective.(map[string]any)
	out, err := gonja.New(template.Limits{}).Render(context.Background(), source, p)
	return out, nil, err
}

func TestDocVectors(t *testing.T) {
	seed := loadSeed(t)
	schemaV1 := seed["web-service-v1"].ParametersSchema
	schemaV2 := seed["web-service-v2"].ParametersSchema
	nginxSchema := seed["nginx-deployment"].ParametersSchema
	pgSchema := seed["postgresql-database"].ParametersSchema
	refSchema := seed["reference-web-service"].ParametersSchema

	frontend := map[string]any{
		"service_name": "frontend", "namespace": "frontend-app",
		"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0",
		"replicas": 3, "container_port": 3000, "memory_limit": "512Mi",
	}

	tests := []struct {
		name       string
		schema     string
		source     string
		params     map[string]any
		want       string
		violations []string // expected to be among the violations
	}{
		{name: "TV1 web-service v1 frontend (defaults injected)", schema: schemaV1, source: webServiceV1, params: frontend, want: tv1Frontend},
		{name: "TV2 web-service v1 backend", schema: schemaV1, source: webServiceV1, params: map[string]any{
			"service_name": "api", "namespace": "backend-api",
			"image_repository": "myregistry.example.com/api", "image_tag": "v3.0.1",
			"replicas": 5, "container_port": 8080, "cpu_limit": "1000m", "memory_limit": "1Gi",
		}, want: tv2Backend},
		{name: "TV3 web-service v2 adds a liveness probe", schema: schemaV2, source: webServiceV2, params: frontend, want: tv3Frontend},
		{name: "TV4 missing required property", schema: schemaV1, source: webServiceV1, params: map[string]any{
			"namespace": "test", "image_repository": "nginx", "image_tag": "latest",
		}, violations: []string{`"service_name" is a required property`}},
		{name: "TV5 replicas out of range", schema: schemaV1, source: webServiceV1, params: map[string]any{
			"service_name": "test", "namespace": "test", "image_repository": "nginx", "image_tag": "latest", "replicas": 100,
		}, violations: []string{"/replicas: 100 is greater than the maximum of 20"}},
		{name: "TV6 explanation example", schema: `{"type":"object","properties":{"service_name":{"type":"string","minLength":1,"maxLength":63},"replicas":{"type":"integer","minimum":1,"maximum":20}}}`,
			source: referenceWebService, params: map[string]any{"service_name": "", "replicas": 100},
			violations: []string{`/service_name: "" is shorter than 1 character`, "/replicas: 100 is greater than the maximum of 20"}},
		{name: "TV7a nginx all parameters", schema: nginxSchema, source: nginxDeployment, params: map[string]any{
			"name": "my-nginx", "namespace": "production", "replicas": 3, "version": "1.25",
		}, want: tv7a},
		{name: "TV7b nginx filter defaults", schema: nginxSchema, source: nginxDeployment, params: map[string]any{"name": "my-nginx"}, want: tv7b},
		{name: "TV7c nginx replicas 11", schema: nginxSchema, source: nginxDeployment, params: map[string]any{"name": "my-nginx", "replicas": 11},
			violations: []string{"/replicas: 11 is greater than the maximum of 10"}},
		{name: "TV7d nginx empty parameters", schema: nginxSchema, source: nginxDeployment, params: map[string]any{},
			violations: []string{`"name" is a required property`}},
		{name: "TV8 postgresql", schema: pgSchema, source: postgresqlDatabase, params: map[string]any{
			"name": "orders-db", "namespace": "production", "database": "orders", "password": "secure-password-here",
			"version": "15", "replicas": 3, "storage_size": "100Gi",
		}, want: tv8},
		{name: "TV8 storage_size pattern", schema: pgSchema, source: postgresqlDatabase, params: map[string]any{
			"name": "orders-db", "namespace": "production", "database": "orders", "password": "secure-password-here", "storage_size": "100GB",
		}, violations: []string{`/storage_size: "100GB" does not match "^[0-9]+[GMK]i$"`}},
		{name: "TV8 short password", schema: pgSchema, source: postgresqlDatabase, params: map[string]any{
			"name": "orders-db", "namespace": "production", "database": "orders", "password": "short", "storage_size": "100Gi",
		}, violations: []string{`/password: "short" is shorter than 8 characters`}},
		{name: "TV9a reference web-service", schema: refSchema, source: referenceWebService,
			params: map[string]any{"service_name": "frontend", "replicas": 3},
			want:   "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: frontend\nspec:\n  replicas: 3"},
		{name: "TV9b reference web-service, replicas from the schema default", schema: refSchema, source: referenceWebService,
			params: map[string]any{"service_name": "frontend"},
			want:   "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: frontend\nspec:\n  replicas: 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, viols, err := instantiate(t, tc.schema, tc.source, tc.params)
			if tc.violations != nil {
				if err != nil {
					t.Fatalf("unexpected render error %v", err)
				}
				for _, want := range tc.violations {
					found := false
					for _, v := range viols {
						if v == want {
							found = true
						}
					}
					if !found {
						t.Errorf("violation %q not in %q", want, viols)
					}
				}
				if len(viols) != len(tc.violations) {
					t.Errorf("got %d violations %q, want %d", len(viols), viols, len(tc.violations))
				}
				return
			}
			if err != nil || len(viols) > 0 {
				t.Fatalf("err=%v violations=%q", err, viols)
			}
			if out != tc.want {
				t.Errorf("rendered:\n%s\n--- want ---\n%s", out, tc.want)
			}
		})
	}
}

// TestSeedTemplatesRenderVerbatim renders the extracted template text exactly as
// stored (single-space indentation) and compares it with the tutorial's
// published output after the same whitespace normalisation.
func TestSeedTemplatesRenderVerbatim(t *testing.T) {
	seed := loadSeed(t)
	s := seed["web-service-v1"]
	out, viols, err := instantiate(t, s.ParametersSchema, s.TemplateContent, map[string]any{
		"service_name": "frontend", "namespace": "frontend-app",
		"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0",
		"replicas": 3, "container_port": 3000, "memory_limit": "512Mi",
	})
	if err != nil || len(viols) > 0 {
		t.Fatalf("err=%v violations=%q", err, viols)
	}
	if got, want := stripIndent(out), stripIndent(s.SeedExpectedFrontend); got != want {
		t.Errorf("rendered:\n%s\n--- seed ---\n%s", got, want)
	}
	// Every docs template validates.
	e := gonja.New(template.Limits{})
	for name, st := range seed {
		if err := e.Validate(context.Background(), st.TemplateContent); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Without the schema defaults (the original's behaviour) the tutorial render
// fails on the first undefined variable, with Tera's message.
func TestUndefinedWithoutDefaults(t *testing.T) {
	e := gonja.New(template.Limits{})
	_, err := e.Render(context.Background(), webServiceV1, map[string]any{
		"service_name": "frontend", "namespace": "frontend-app",
		"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0",
		"replicas": 3, "container_port": 3000, "memory_limit": "512Mi",
	})
	var re *template.RenderError
	if !errors.As(err, &re) {
		t.Fatalf("want RenderError, got %T %v", err, err)
	}
	if want := "Variable `cpu_request` not found in context while rendering 'template'"; re.Msg != want {
		t.Errorf("got %q, want %q", re.Msg, want)
	}
	if re.Line != 31 {
		t.Errorf("line %d, want 31", re.Line)
	}
}

// TV10: the Tera feature snippets of the how-to and reference, and the
// original's unit-test vectors.
func TestTV10Snippets(t *testing.T) {
	hpa := `{% if enable_hpa %}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ name }}-hpa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ name }}
  minReplicas: {{ min_replicas | default(value=1) }}
  maxReplicas: {{ max_replicas | default(value=10) }}
{% endif %}`
	hpaOut := `
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web-hpa
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 1
  maxReplicas: 10
`
	loops := `spec:
  containers:
{% for container in containers %}
  - name: {{ container.name }}
    image: {{ container.image }}
    ports:
{% for port in container.ports %}
    - containerPort: {{ port }}
{% endfor %}
{% endfor %}`
	loopsOut := `spec:
  containers:

  - name: a
    image: img:1
    ports:

    - containerPort: 80

    - containerPort: 443

`
	envLoop := `env:
{% for key, value in env_vars %}
- name: {{ key }}
  value: "{{ value }}"
{% endfor %}`
	envOut := "env:\n\n- name: A\n  value: \"1\"\n\n- name: B\n  value: \"2\"\n"
	filters := `metadata:
  name: {{ name | lower }} # lowercase
  labels:
    version: "{{ version | upper }}" # uppercase
    slug: {{ name | slugify }} # URL-safe slug`
	filtersOut := `metadata:
  name: my app # lowercase
  labels:
    version: "V1.2" # uppercase
    slug: my-app # URL-safe slug`

	cases := []struct {
		name, src string
		params    map[string]any
		want      string
		wantErr   string
	}{
		{"default absent", "replicas: {{ replicas | default(value=1) }}", map[string]any{}, "replicas: 1", ""},
		{"default present", "replicas: {{ replicas | default(value=1) }}", map[string]any{"replicas": 4}, "replicas: 4", ""},
		{"hpa enabled", hpa, map[string]any{"enable_hpa": true, "name": "web"}, hpaOut, ""},
		{"hpa disabled", hpa, map[string]any{"enable_hpa": false, "name": "web"}, "", ""},
		{"hpa absent", hpa, map[string]any{"name": "web"}, "", ""},
		{"nested loops", loops, map[string]any{"containers": []any{map[string]any{"name": "a", "image": "img:1", "ports": []any{80, 443}}}}, loopsOut, ""},
		{"map loop sorted", envLoop, map[string]any{"env_vars": map[string]any{"B": "2", "A": "1"}}, envOut, ""},
		{"filters", filters, map[string]any{"name": "My App", "version": "v1.2"}, filtersOut, ""},
		{"trim", `{{ "  x " | trim }}`, nil, "x", ""},
		{"replace named", `{{ "a-b" | replace(from="-", to="_") }}`, nil, "a_b", ""},
		{"json_encode", `{{ obj | json_encode }}`, map[string]any{"obj": map[string]any{"a": 1}}, `{"a":1}`, ""},
		{"math", "{{ replicas * 2 }}", map[string]any{"replicas": 3}, "6", ""},
		{"hello", "Hello, {{ name }}!", map[string]any{"name": "World"}, "Hello, World!", ""},
		{"upper", "Name: {{ name | upper }}", map[string]any{"name": "test"}, "Name: TEST", ""},
		{"dotted", "host: {{ config.host }}", map[string]any{"config": map[string]any{"host": "localhost"}}, "host: localhost", ""},
		{"undefined", "Hello, {{ name }}!", map[string]any{}, "", "Variable `name` not found in context while rendering 'template'"},
		{"reference snippet", "name: {{ service_name }}\nreplicas: {{ replicas }}\nimage: {{ repository }}:{{ tag }}",
			map[string]any{"service_name": "web", "replicas": 2, "repository": "nginx", "tag": "1.25"}, "name: web\nreplicas: 2\nimage: nginx:1.25", ""},
		{"templating docs example", "name: {{ name }}\nreplicas: {{ replicas }}", map[string]any{"name": "my-app", "replicas": 3}, "name: my-app\nreplicas: 3", ""},
	}
	e := gonja.New(template.Limits{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.Render(context.Background(), tc.src, tc.params)
			if tc.wantErr != "" {
				var re *template.RenderError
				if !errors.As(err, &re) || re.Msg != tc.wantErr {
					t.Fatalf("got %v (%T), want RenderError %q", err, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Errorf("got:\n%q\nwant:\n%q", out, tc.want)
			}
		})
	}
}

// The syntax vectors: the original's validate_tera_syntax tests and the
// troubleshooting list of the how-to (unclosed blocks, missing end tags,
// invalid filter names — the latter rejected at creation,
// docs/templates.md#unknown-filters).
func TestSyntaxVectors(t *testing.T) {
	e := gonja.New(template.Limits{})
	valid := []string{
		"Hello, {{ name }}!",
		"{% if x %}a{% elif y %}b{% else %}c{% endif %}",
		"{% for k, v in m %}{{ k }}{% endfor %}",
		"{# comment #}{% raw %}{{ not rendered }}{% endraw %}",
		"{% set x = 1 %}{% set_global y = 2 %}{% filter upper %}a{% endfilter %}",
	}
	for _, src := range valid {
		if err := e.Validate(context.Background(), src); err != nil {
			t.Errorf("Validate(%q) = %v", src, err)
		}
	}
	invalid := []struct {
		src  string
		want string // full Error() text
	}{
		{"Hello, {{ name !", `line 1, column 17: Unexpected "!"`},
		{"{% if true %} hello", "line 1, column 20: unexpected end of template, expected {% elif %} or {% else %} or {% endif %}"},
		{"{% for x in xs %}{{ x }}", "line 1, column 25: unexpected end of template, expected {% else %} or {% endfor %}"},
		{"a: {{ name ", `line 1, column 12: '}}' expected here`},
		{"a: 1\nb: {{ name | frobnicate }}", `line 2, column 14: unknown filter "frobnicate"`},
		{"{% if x is frob %}{% endif %}", `line 1, column 12: unknown test "frob"`},
		{"{{ now() }}", `line 1, column 4: unknown function "now"`},
		{"{% include \"other\" %}", `line 1, column 4: unknown tag "include"`},
		{"{% macro m() %}{% endmacro %}", `line 1, column 4: unknown tag "macro"`},
		{"{{ name.upper() }}", "line 1, column 14: method calls are not supported; call a function by name or use a filter"},
		{"{% continue %}", "line 1, column 1: {% continue %} must be inside a {% for %} loop"},
	}
	for _, tc := range invalid {
		err := e.Validate(context.Background(), tc.src)
		var se *template.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Validate(%q) = %v (%T), want SyntaxError", tc.src, err, err)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Validate(%q) = %q, want %q", tc.src, err.Error(), tc.want)
		}
		// Render reports the same error.
		if _, rerr := e.Render(context.Background(), tc.src, nil); rerr == nil || rerr.Error() != err.Error() {
			t.Errorf("Render(%q) = %v, want %v", tc.src, rerr, err)
		}
	}
}
