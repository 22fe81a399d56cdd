package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	gotoml "github.com/pelletier/go-toml/v2"
)

// Environment variables outside the BROKKR__ namespace that steer loading.
const (
	EnvConfigFile      = "BROKKR_CONFIG_FILE"
	EnvWatcherEnabled  = "BROKKR_CONFIG_WATCHER_ENABLED"
	EnvWatcherDebounce = "BROKKR_CONFIG_WATCHER_DEBOUNCE_SECONDS"
)

// misnamed maps keys the original's documentation gets wrong to the real
// ones (docs/compatibility.md#misnamed-keys), so the error says what to write instead.
var misnamed = map[string]string{
	"webhooks.encryption_key": "broker.webhook_encryption_key",
}

// DefaultDebounce is the watcher's coalescing window (the original's 5 s).
const DefaultDebounce = 5 * time.Second

// LoadOptions steer Load. The zero value reads the process environment and
// the file named by BROKKR_CONFIG_FILE.
type LoadOptions struct {
	// File overrides BROKKR_CONFIG_FILE when set.
	File string
	// Environ replaces os.Environ, so tests need not touch the process
	// environment.
	Environ func() []string
}

func (o LoadOptions) environ() []string {
	if o.Environ != nil {
		return o.Environ()
	}
	return os.Environ()
}

func (o LoadOptions) lookup(name string) (string, bool) {
	for _, kv := range o.environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// FilePath is the TOML file Load reads, or "" when there is none.
func (o LoadOptions) FilePath() string {
	if o.File != "" {
		return o.File
	}
	v, _ := o.lookup(EnvConfigFile)
	return v
}

// WatcherConfig says whether and how to watch the config file, read from
// the environment exactly as the original's ConfigWatcherConfig does.
type WatcherConfig struct {
	Enabled  bool
	File     string
	Debounce time.Duration
}

// Watcher reports the watcher configuration: enabled only when a file is
// named, exists, and BROKKR_CONFIG_WATCHER_ENABLED is not false/0.
func (o LoadOptions) Watcher() WatcherConfig {
	wc := WatcherConfig{File: o.FilePath(), Debounce: DefaultDebounce}
	if v, ok := o.lookup(EnvWatcherDebounce); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			wc.Debounce = time.Duration(n) * time.Second
		}
	}
	if wc.File == "" {
		return wc
	}
	if _, err := os.Stat(wc.File); err != nil {
		return wc
	}
	if v, ok := o.lookup(EnvWatcherEnabled); ok {
		if strings.EqualFold(v, "false") || v == "0" {
			return wc
		}
	}
	wc.Enabled = true
	return wc
}

// Load builds Settings from defaults, then the TOML file, then BROKKR__*
// environment variables, and validates the result. Every error it returns
// matches ErrInvalid, so main can exit with the configuration exit code.
func Load(opts LoadOptions) (Settings, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(flatten(Defaults()), "."), nil); err != nil {
		return Settings{}, fmt.Errorf("%w: defaults: %v", ErrInvalid, err)
	}
	if path := opts.FilePath(); path != "" {
		if err := k.Load(file.Provider(path), toml.Parser()); err != nil {
			return Settings{}, fileError(path, err)
		}
	}
	envProvider := env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		EnvironFunc:   opts.environ,
		TransformFunc: func(name, value string) (string, any) { return envKey(name), value },
	})
	if err := k.Load(envProvider, nil); err != nil {
		return Settings{}, fmt.Errorf("%w: environment: %v", ErrInvalid, err)
	}

	var s Settings
	var problems []Problem
	_, byKey := leaves()
	all := k.All()
	keys := make([]string, 0, len(all))
	for key := range all {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		raw := all[key]
		l, ok := byKey[key]
		if !ok {
			// koanf keeps an empty TOML table ([tls]) as a leaf holding an
			// empty map; that is a known section with nothing in it.
			if m, isMap := raw.(map[string]any); isMap && len(m) == 0 && isSection(key) {
				continue
			}
			msg := "unknown key"
			if alt, ok := misnamed[key]; ok {
				msg += fmt.Sprintf("; did you mean %s (%s)?", alt, EnvName(alt))
			}
			problems = append(problems, Problem{Key: key, Msg: msg})
			continue
		}
		if err := l.set(&s, raw); err != nil {
			problems = append(problems, Problem{Key: key, Msg: err.Error()})
		}
	}
	// Validate even when some keys failed to decode, so one start reports
	// everything; a key that failed to decode is not reported twice.
	failed := map[string]bool{}
	for _, p := range problems {
		failed[p.Key] = true
	}
	var verr *Error
	if err := s.Validate(); errors.As(err, &verr) {
		for _, p := range verr.Problems {
			if !failed[p.Key] {
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		return Settings{}, &Error{Problems: problems}
	}
	return s, nil
}

func fileError(path string, err error) error {
	var de *gotoml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("%w: %s (%s): line %d, column %d: %v", ErrInvalid, path, EnvConfigFile, row, col, de)
	}
	return fmt.Errorf("%w: %s (%s): %v", ErrInvalid, path, EnvConfigFile, err)
}
