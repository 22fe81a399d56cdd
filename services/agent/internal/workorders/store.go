package workorders

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// Claim is a work order this agent claimed (or is claiming) and has not
// completed yet. It is written before the claim call and removed once the
// completion is queued in the outbox, so a restart finds every order it may
// hold.
type Claim struct {
	Order workorder.WorkOrder `json:"order"`
	// ClaimedAt is when this agent claimed the order: the per-order
	// timeout counts from it, across restarts.
	ClaimedAt time.Time `json:"claimed_at"`
}

// Store keeps the claims in flight: one JSON file per order in a folder
// (written to a temporary file, fsynced, renamed), or in memory only.
type Store struct {
	dir string
	mu  sync.Mutex
	mem map[uuid.UUID]Claim
}

const claimSuffix = ".json"

// OpenStore opens (creating) dir; "" keeps claims in memory only.
func OpenStore(dir string) (*Store, error) {
	s := &Store{dir: dir, mem: map[uuid.UUID]Claim{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("work-order state: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("work-order state: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".tmp-") {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	return s, nil
}

// Durable reports whether claims survive a restart.
func (s *Store) Durable() bool { return s.dir != "" }

func (s *Store) path(id uuid.UUID) string { return filepath.Join(s.dir, id.String()+claimSuffix) }

// Save records c, replacing an earlier record of the same order.
func (s *Store) Save(c Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		s.mem[c.Order.ID] = c
		return nil
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(c.Order.ID))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("work-order state: %w", err)
	}
	return syncDir(s.dir)
}

// Delete forgets the order (a missing record is fine).
func (s *Store) Delete(id uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		delete(s.mem, id)
		return nil
	}
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("work-order state: %w", err)
	}
	return syncDir(s.dir)
}

// List returns the recorded claims, oldest claim first. Unreadable records
// are skipped and returned as errors (they are left on disk for a human).
func (s *Store) List() ([]Claim, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Claim
	var errs []error
	if s.dir == "" {
		for _, c := range s.mem {
			out = append(out, c)
		}
	} else {
		des, err := os.ReadDir(s.dir)
		if err != nil {
			return nil, []error{err}
		}
		for _, de := range des {
			name := de.Name()
			if de.IsDir() || !strings.HasSuffix(name, claimSuffix) || strings.HasPrefix(name, ".") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(s.dir, name))
			var c Claim
			if err == nil {
				err = json.Unmarshal(data, &c)
			}
			if err == nil && c.Order.ID.String()+claimSuffix != name {
				err = errors.New("file name does not match the work order id")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("work-order state %s: %w", name, err))
				continue
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClaimedAt.Before(out[j].ClaimedAt) })
	return out, errs
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("work-order state: %w", err)
	}
	return nil
}
