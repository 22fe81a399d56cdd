package config

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Change is one hot-reloaded key, in the shape of the original's
// POST /admin/config/reload response.
type Change struct {
	Key      string `json:"key"`
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
}

// Store holds the live Settings. Readers call Current on every use (a
// lock-free atomic load), so hot-reloaded values take effect on the next
// request or tick without anyone being notified; Subscribe is for state
// that must be pushed (a slog.LevelVar).
type Store struct {
	opts LoadOptions
	log  *slog.Logger
	cur  atomic.Pointer[Settings]

	mu   sync.Mutex // serialises Reload and guards subs
	subs []func(Settings)
}

// NewStore starts from initial (normally the result of Load with the same
// opts). A nil logger discards the store's own log lines.
func NewStore(initial Settings, opts LoadOptions, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Store{opts: opts, log: logger}
	s.cur.Store(&initial)
	return s
}

// Current returns the live settings. Treat the slices inside as read-only:
// they are shared with other readers.
func (s *Store) Current() Settings { return *s.cur.Load() }

// CORS returns the live CORS section; handy as a per-request policy source.
func (s *Store) CORS() CORS { return s.cur.Load().CORS }

// Subscribe registers fn to run after every successful reload, in
// registration order, with the new settings.
func (s *Store) Subscribe(fn func(Settings)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Reload re-runs Load and applies only the hot-reloadable keys; other keys
// keep their start-up values (a warning names those that changed, without
// values). On a load error nothing changes.
func (s *Store) Reload() ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	loaded, err := Load(s.opts)
	if err != nil {
		return nil, err
	}
	old := s.Current()
	next := old
	_, byKey := leaves()
	var changes []Change
	for _, key := range hotKeys {
		l := byKey[key]
		ov, nv := l.field(&old), l.field(&loaded)
		was, now := display(ov), display(nv)
		l.field(&next).Set(nv)
		if was != now {
			changes = append(changes, Change{Key: key, OldValue: was, NewValue: now})
		}
	}
	if cold := coldChanges(old, loaded); len(cold) > 0 {
		s.log.Warn("config keys changed that need a restart to take effect", "keys", cold)
	}
	s.cur.Store(&next)
	for _, fn := range s.subs {
		fn(next)
	}
	return changes, nil
}

func coldChanges(a, b Settings) []string {
	ls, _ := leaves()
	hot := map[string]bool{}
	for _, k := range hotKeys {
		hot[k] = true
	}
	var out []string
	for _, l := range ls {
		if hot[l.key] {
			continue
		}
		if display(l.field(&a)) != display(l.field(&b)) || secretChanged(l, &a, &b) {
			out = append(out, l.key)
		}
	}
	return out
}

// secretChanged compares secrets by value: their display form is always
// [REDACTED], which would hide a rotation.
func secretChanged(l leaf, a, b *Settings) bool {
	if l.typ != reflect.TypeFor[secret.String]() {
		return false
	}
	return l.field(a).String() != l.field(b).String()
}

// Watch reloads when the config file changes, until ctx ends. It watches
// the file's parent directory (editors and Kubernetes ConfigMap updates
// replace the file rather than write it), and coalesces every event inside
// the debounce window into one reload at the end of the window. A zero
// debounce means DefaultDebounce. Watch returns nil at once when no file is
// configured or the file does not exist, as the original does.
func (s *Store) Watch(ctx context.Context, debounce time.Duration) error {
	path := s.opts.FilePath()
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		s.log.Warn("config file does not exist, watcher disabled", "file", path)
		return nil
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config watcher: %w", err)
	}
	defer w.Close()
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("config watcher: watching %s: %w", dir, err)
	}
	s.log.Info("config watcher started", "file", path, "debounce", debounce.String())

	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !relevant(ev, base) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
				fire = timer.C
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.log.Warn("config watcher error", "error", err)
		case <-fire:
			timer, fire = nil, nil
			changes, err := s.Reload()
			if err != nil {
				s.log.Error("config reload failed; keeping the current settings", "error", err)
				continue
			}
			s.log.Info("config reloaded", "changes", len(changes))
			for _, c := range changes {
				s.log.Info("config changed", "key", c.Key, "old_value", c.OldValue, "new_value", c.NewValue)
			}
		}
	}
}

// relevant keeps the file's own events and Kubernetes' atomic-writer
// entries ("..data", "..2024_01_01..."), and ignores other files that share
// the directory and pure permission changes.
func relevant(ev fsnotify.Event, base string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	return name == base || strings.HasPrefix(name, "..")
}
