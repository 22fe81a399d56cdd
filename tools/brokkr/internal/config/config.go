// Package config reads and writes the brokkr client's TOML file
// (~/.brokkr/config) and resolves the connection settings: flag, then
// environment, then the file. A blank value in one source falls through to
// the next.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Context is one named broker connection.
type Context struct {
	BrokerURL string `toml:"broker_url,omitempty"`
	PAK       string `toml:"pak,omitempty"`
}

// File is the config file. broker_url and pak at the top level are the
// original client's keys; contexts are this client's addition and live in
// the same file.
type File struct {
	BrokerURL      string             `toml:"broker_url,omitempty"`
	PAK            string             `toml:"pak,omitempty"`
	CurrentContext string             `toml:"current_context,omitempty"`
	Contexts       map[string]Context `toml:"contexts,omitempty"`
}

// DefaultPath is ~/.brokkr/config.
func DefaultPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for ~/.brokkr/config: %w", err)
	}
	return filepath.Join(home, ".brokkr", "config"), nil
}

// Load reads the file; a missing file is an empty File, a malformed one an
// error naming it.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	var f File
	if err := toml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("malformed config %s: %w", path, err)
	}
	return &f, nil
}

// Save writes the file with mode 0600 (it holds PAKs) through a temporary
// file and a rename, creating the directory with 0700.
func Save(path string, f *File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := toml.Marshal(f)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// ContextNames lists the contexts, sorted.
func (f *File) ContextNames() []string {
	names := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Sources are the values a command saw; Resolve picks per setting.
type Sources struct {
	FlagURL, FlagPAK string
	EnvURL, EnvPAK   string
	// Context selects a context of the file (--context); empty means the
	// file's current_context.
	Context string
}

// Settings are the resolved connection settings.
type Settings struct {
	BrokerURL string
	PAK       string
	// Context is the file context that was used, if any.
	Context string
}

// Resolve applies flag → environment → file (the selected context, then
// the top-level keys).
func Resolve(s Sources, f *File) (Settings, error) {
	var out Settings
	ctxName := strings.TrimSpace(s.Context)
	if ctxName == "" {
		ctxName = strings.TrimSpace(f.CurrentContext)
	}
	var fromCtx Context
	if ctxName != "" {
		c, ok := f.Contexts[ctxName]
		if !ok && s.Context != "" {
			return out, fmt.Errorf("no context %q in the config file (have: %s)", ctxName, strings.Join(f.ContextNames(), ", "))
		}
		if ok {
			fromCtx, out.Context = c, ctxName
		}
	}
	out.BrokerURL = first(s.FlagURL, s.EnvURL, fromCtx.BrokerURL, f.BrokerURL)
	out.PAK = first(s.FlagPAK, s.EnvPAK, fromCtx.PAK, f.PAK)
	return out, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
