package config

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// Follow keeps the store current until ctx ends: it watches the config file
// when the watcher is enabled (BROKKR_CONFIG_WATCHER_*) and reloads on
// SIGHUP, logging every hot key that changed. Every long-running service
// calls it once after start-up.
func (s *Store) Follow(ctx context.Context) {
	if w := s.opts.Watcher(); w.Enabled {
		go func() {
			if err := s.Watch(ctx, w.Debounce); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Warn("config watcher stopped", "error", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reloadAndLog()
		}
	}
}

func (s *Store) reloadAndLog() {
	log := s.log
	changes, err := s.Reload()
	if err != nil {
		log.Error("config reload failed; keeping the current settings", "error", err)
		return
	}
	log.Info("config reloaded", "changes", len(changes))
	for _, c := range changes {
		log.Info("config changed", "key", c.Key, "old_value", c.OldValue, "new_value", c.NewValue)
	}
}
