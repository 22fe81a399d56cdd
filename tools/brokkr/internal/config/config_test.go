package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvePrecedence(t *testing.T) {
	file := &File{BrokerURL: "http://file", PAK: "file-pak", CurrentContext: "prod",
		Contexts: map[string]Context{"prod": {BrokerURL: "http://prod", PAK: "prod-pak"}, "dev": {BrokerURL: "http://dev"}}}
	for _, tc := range []struct {
		name     string
		src      Sources
		f        *File
		url, pak string
		err      string
	}{
		{"flag wins", Sources{FlagURL: "http://flag", FlagPAK: "flag-pak", EnvURL: "http://env", EnvPAK: "env-pak"}, file, "http://flag", "flag-pak", ""},
		{"env over file", Sources{EnvURL: "http://env", EnvPAK: "env-pak"}, file, "http://env", "env-pak", ""},
		{"blank flag falls through", Sources{FlagURL: "  ", EnvURL: "http://env"}, file, "http://env", "prod-pak", ""},
		{"current context over top level", Sources{}, file, "http://prod", "prod-pak", ""},
		{"--context picks, gaps from top level", Sources{Context: "dev"}, file, "http://dev", "file-pak", ""},
		{"unknown --context", Sources{Context: "nope"}, file, "", "", `no context "nope"`},
		{"original file (top level only)", Sources{}, &File{BrokerURL: "http://orig", PAK: "orig-pak"}, "http://orig", "orig-pak", ""},
		{"nothing", Sources{}, &File{}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.src, tc.f)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.BrokerURL != tc.url || got.PAK != tc.pak {
				t.Fatalf("got %+v %v, want %s %s", got, err, tc.url, tc.pak)
			}
		})
	}
}

func TestLoadSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "config")
	f, err := Load(path)
	if err != nil || f.BrokerURL != "" {
		t.Fatalf("missing file: %v %+v", err, f)
	}
	f.Contexts = map[string]Context{"a": {BrokerURL: "http://a", PAK: "pak-a"}}
	f.CurrentContext = "a"
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	back, err := Load(path)
	if err != nil || back.Contexts["a"].PAK != "pak-a" || back.CurrentContext != "a" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// The original client's file reads as is.
	orig := filepath.Join(dir, "orig")
	_ = os.WriteFile(orig, []byte("broker_url = \"https://broker.example.com\"\npak = \"brokkr_BRabcd1234_GeneratorTokenExample0001\"\n"), 0o600)
	o, err := Load(orig)
	if err != nil || o.BrokerURL != "https://broker.example.com" || !strings.HasPrefix(o.PAK, "brokkr_BR") {
		t.Fatalf("original file: %+v %v", o, err)
	}
	_ = os.WriteFile(orig, []byte("broker_url = \n"), 0o600)
	if _, err := Load(orig); err == nil || !strings.Contains(err.Error(), "malformed config") {
		t.Fatalf("malformed file: %v", err)
	}
}
