package config

import (
	"os"
	"strings"
	"testing"
)

// TestEveryKeyDocumented keeps docs/configuration.md in step with the
// settings: every key and its environment form must appear there.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "`"+k+"`") || !strings.Contains(string(doc), "`"+EnvName(k)+"`") {
			t.Errorf("docs/configuration.md does not document %s (%s)", k, EnvName(k))
		}
	}
}
