package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
)

// TestMigrateSubcommands: api migrate version|up|down against a fresh database.
func TestMigrateSubcommands(t *testing.T) {
	env := append(os.Environ(), "BROKKR__DATABASE__URL="+pgtest.NewEmpty(t), "BROKKR__LOG__LEVEL=error")
	run := func(args ...string) string {
		cmd := exec.Command(filepath.Join(binDir, "api"), append([]string{"migrate"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("api migrate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if v := run("version"); !strings.Contains(v, "version 0 ") {
		t.Fatalf("fresh database: %q", v)
	}
	run("up")
	top := run("version")
	var n int
	if _, err := fmt.Sscanf(top, "version %d", &n); err != nil || n < 2 {
		t.Fatalf("after up: %q", top)
	}
	run("down")
	// One step down is the previous migration present, which need not be
	// n-1: numbers are reserved per change and may be merged out of order.
	prev := previousMigration(t, n)
	if v := run("version"); !strings.Contains(v, fmt.Sprintf("version %d ", prev)) {
		t.Fatalf("after down: %q, want version %d", v, prev)
	}
	run("up")
	if v := run("version"); v != top {
		t.Fatalf("after up again: %q, want %q", v, top)
	}
	cmd := exec.Command(filepath.Join(binDir, "api"), "migrate", "sideways")
	cmd.Env = env
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 64 {
		t.Fatalf("unknown migrate command: exit %d", cmd.ProcessState.ExitCode())
	}
}

// TestConfigFileHotReload: editing the TOML file named by BROKKR_CONFIG_FILE
// changes the CORS origins of the running api without a restart.
func TestConfigFileHotReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "brokkr.toml")
	write := func(origins string) {
		content := fmt.Sprintf("[cors]\nallowed_origins = [%s]\n", origins)
		if err := os.WriteFile(file+".tmp", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write(`"http://a.example"`)
	t.Setenv("BROKKR_CONFIG_FILE", file)
	s := newStackWith(t, "BROKKR_CONFIG_WATCHER_ENABLED=true", "BROKKR_CONFIG_WATCHER_DEBOUNCE_SECONDS=1")

	allowed := func(origin string) bool {
		req, _ := http.NewRequest(http.MethodOptions, s.apiURL+"/api/v1/agents", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin") == origin
	}
	if !allowed("http://a.example") || allowed("http://b.example") {
		t.Fatal("initial CORS policy not applied")
	}
	write(`"http://a.example", "http://b.example"`)
	deadline := time.Now().Add(15 * time.Second)
	for !allowed("http://b.example") {
		if time.Now().After(deadline) {
			t.Fatalf("file change not applied; api output:\n%s", s.api.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// previousMigration is the highest migration version below n in
// migrations/sql.
func previousMigration(t *testing.T, n int) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "..", "migrations", "sql"))
	if err != nil {
		t.Fatal(err)
	}
	prev := 0
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v < n && v > prev {
			prev = v
		}
	}
	return prev
}
