// Package outbox is the agent's durable spool for reports the broker could
// not take (events now; health reports and diagnostic results later). Each
// record is one file written atomically (temporary file, fsync, rename,
// directory fsync) and carrying a SHA-256 checksum; records are replayed
// strictly in order, one at a time, and the spool is bounded in size.
//
// Delivery is at-least-once by construction, and exactly-once in effect:
// every record carries a random key fixed when it is appended and sent as
// the Idempotency-Key header on every attempt, so a record that reached the
// broker before a crash (or whose answer was lost) is answered from the
// broker's stored response when it is sent again, and recorded once.
// Records written by an earlier version have no key; for those, records go
// out one at a time, so after a crash only the oldest can have reached the
// broker without being removed, and it is checked with the Verify hook.
package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is one pending request to the broker.
type Record struct {
	Seq uint64 `json:"seq"`
	// Key is the record's Idempotency-Key: random, fixed at Append, so it
	// is the same on every attempt, across restarts, and never reused by a
	// later record (sequence numbers restart when the spool is empty).
	Key       string          `json:"key,omitempty"`
	Kind      string          `json:"kind"` // "event", later "health", "diagnostic_result", …
	Method    string          `json:"method"`
	Path      string          `json:"path"`
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
}

const (
	magic    = "brokkr-outbox/1"
	suffix   = ".rec"
	tmpPref  = ".tmp-"
	badDir   = "corrupt"
	seqWidth = 20
)

// newKey returns a fresh record key: "outbox-" and 128 random bits.
func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("outbox: no randomness: " + err.Error())
	}
	return "outbox-" + hex.EncodeToString(b[:])
}

// ErrTooLarge means a single record exceeds the spool's bound.
var ErrTooLarge = errors.New("outbox: record larger than the outbox bound")

type entry struct {
	rec  Record
	size int64
}

// Outbox is a durable FIFO of records. It is safe for concurrent use.
type Outbox struct {
	dir      string // "" means memory only
	maxBytes int64
	log      *slog.Logger

	sendMu    sync.Mutex // one delivery at a time (Run and Flush)
	mu        sync.Mutex
	entries   []entry
	bytes     int64
	nextSeq   uint64
	uncertain uint64 // seq of a record that may already have been delivered (0 = none)
	dropped   uint64
	onDrop    func(Record, string)
	kick      chan struct{}
}

// Options configure Open.
type Options struct {
	// Dir holds the records; "" keeps them in memory only (not durable).
	Dir string
	// MaxBytes bounds the total size; when a new record does not fit the
	// oldest are dropped (and reported to OnDrop). ≤0 means 64 MiB.
	MaxBytes int64
	Logger   *slog.Logger
	// OnDrop is told about every record dropped without delivery (evicted
	// for space, rejected by the broker as permanently invalid).
	OnDrop func(rec Record, reason string)
}

// Open loads the records left in dir (creating it), verifying each
// checksum: a corrupt record is moved to dir/corrupt and skipped.
func Open(opts Options) (*Outbox, error) {
	o := &Outbox{dir: opts.Dir, maxBytes: opts.MaxBytes, log: opts.Logger, onDrop: opts.OnDrop,
		nextSeq: 1, kick: make(chan struct{}, 1)}
	if o.maxBytes <= 0 {
		o.maxBytes = 64 << 20
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.dir == "" {
		return o, nil
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	des, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPref) {
			_ = os.Remove(filepath.Join(o.dir, name)) // an interrupted write
			continue
		}
		if de.IsDir() || !strings.HasSuffix(name, suffix) {
			continue
		}
		path := filepath.Join(o.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		rec, err := decodeRecord(data)
		if err == nil && fileName(rec.Seq) != name {
			err = fmt.Errorf("file name does not match sequence %d", rec.Seq)
		}
		if err != nil {
			o.quarantine(path, err)
			continue
		}
		o.entries = append(o.entries, entry{rec: rec, size: int64(len(data))})
		o.bytes += int64(len(data))
	}
	sort.Slice(o.entries, func(i, j int) bool { return o.entries[i].rec.Seq < o.entries[j].rec.Seq })
	if n := len(o.entries); n > 0 {
		o.nextSeq = o.entries[n-1].rec.Seq + 1
		o.uncertain = o.entries[0].rec.Seq
	}
	return o, nil
}

// Durable reports whether records survive a restart.
func (o *Outbox) Durable() bool { return o.dir != "" }

func (o *Outbox) quarantine(path string, cause error) {
	o.log.Error("outbox: corrupt record quarantined", "file", filepath.Base(path), "error", cause)
	bad := filepath.Join(o.dir, badDir)
	if err := os.MkdirAll(bad, 0o700); err == nil {
		if os.Rename(path, filepath.Join(bad, filepath.Base(path))) == nil {
			return
		}
	}
	_ = os.Remove(path)
}

func fileName(seq uint64) string {
	return fmt.Sprintf("%0*d%s", seqWidth, seq, suffix)
}

func encodeRecord(r Record) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s sha256=%s len=%d\n", magic, hex.EncodeToString(sum[:]), len(payload))
	b.Write(payload)
	return b.Bytes(), nil
}

func decodeRecord(data []byte) (Record, error) {
	header, payload, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return Record{}, errors.New("no header")
	}
	fields := strings.Fields(string(header))
	if len(fields) != 3 || fields[0] != magic || !strings.HasPrefix(fields[1], "sha256=") || !strings.HasPrefix(fields[2], "len=") {
		return Record{}, fmt.Errorf("bad header %q", header)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(fields[2], "len="))
	if err != nil || n != len(payload) {
		return Record{}, fmt.Errorf("length mismatch (header %s, have %d bytes)", fields[2], len(payload))
	}
	sum := sha256.Sum256(payload)
	if hex.EncodeToString(sum[:]) != strings.TrimPrefix(fields[1], "sha256=") {
		return Record{}, errors.New("checksum mismatch")
	}
	var r Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return Record{}, fmt.Errorf("payload: %w", err)
	}
	return r, nil
}

// writeAtomic writes data as name: a temporary file in the same directory,
// fsync, rename over the final name, fsync of the directory.
func (o *Outbox) writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(o.dir, tmpPref+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(o.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append stores a record durably and returns it with its sequence number.
// When the bound would be exceeded the oldest records are dropped first.
func (o *Outbox) Append(kind, method, path string, body any) (Record, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Record{}, fmt.Errorf("outbox: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	r := Record{Seq: o.nextSeq, Key: newKey(), Kind: kind, Method: method, Path: path, Body: raw, CreatedAt: time.Now().UTC()}
	data, err := encodeRecord(r)
	if err != nil {
		return Record{}, fmt.Errorf("outbox: %w", err)
	}
	size := int64(len(data))
	if size > o.maxBytes {
		return Record{}, ErrTooLarge
	}
	var evicted []Record
	for o.bytes+size > o.maxBytes && len(o.entries) > 0 {
		e := o.entries[0]
		if err := o.removeFile(e.rec.Seq); err != nil {
			return Record{}, err
		}
		o.entries = o.entries[1:]
		o.bytes -= e.size
		o.dropped++
		evicted = append(evicted, e.rec)
	}
	if o.dir != "" {
		if err := o.writeAtomic(fileName(r.Seq), data); err != nil {
			return Record{}, fmt.Errorf("outbox: writing record %d: %w", r.Seq, err)
		}
	}
	o.nextSeq++
	o.entries = append(o.entries, entry{rec: r, size: size})
	o.bytes += size
	for _, ev := range evicted {
		o.log.Error("outbox full: oldest record dropped", "seq", ev.Seq, "kind", ev.Kind, "path", ev.Path)
		if o.onDrop != nil {
			o.onDrop(ev, "outbox full")
		}
	}
	o.signal()
	return r, nil
}

func (o *Outbox) removeFile(seq uint64) error {
	if o.dir == "" {
		return nil
	}
	if err := os.Remove(filepath.Join(o.dir, fileName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: removing record %d: %w", seq, err)
	}
	return nil
}

// remove deletes the record with seq once it was delivered (or given up).
func (o *Outbox) remove(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, e := range o.entries {
		if e.rec.Seq == seq {
			if err := o.removeFile(seq); err != nil {
				return err
			}
			o.entries = append(o.entries[:i:i], o.entries[i+1:]...)
			o.bytes -= e.size
			if o.uncertain == seq {
				o.uncertain = 0
			}
			return nil
		}
	}
	return nil
}

// Pending returns a copy of the records not yet delivered, oldest first.
func (o *Outbox) Pending() []Record {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Record, len(o.entries))
	for i, e := range o.entries {
		out[i] = e.rec
	}
	return out
}

// Stats reports the number of pending records, their bytes and how many
// were dropped since Open.
func (o *Outbox) Stats() (records int, bytes int64, dropped uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries), o.bytes, o.dropped
}

// Kick makes a waiting Run retry now (e.g. after a heartbeat succeeded).
func (o *Outbox) Kick() {
	o.mu.Lock()
	o.signal()
	o.mu.Unlock()
}

func (o *Outbox) signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *Outbox) head() (Record, bool, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.entries) == 0 {
		return Record{}, false, false
	}
	r := o.entries[0].rec
	return r, r.Seq == o.uncertain, true
}

// Sender delivers one record. An error for which Permanent returns true
// drops the record; any other error keeps it and backs off.
type Sender struct {
	Send func(ctx context.Context, r Record) error
	// Verify, when set, is asked whether the oldest record left by a
	// previous run already reached the broker (the process may have died
	// between delivery and removal).
	Verify func(ctx context.Context, r Record) (delivered bool, err error)
	// Permanent classifies send errors.
	Permanent func(error) bool
	// Delay returns the wait after the n-th consecutive failure.
	Delay func(n int) time.Duration
	// OnDelivered is told about every delivered record (metrics, logs).
	OnDelivered func(Record)
}

// Run delivers records in order until ctx ends.
func (o *Outbox) Run(ctx context.Context, s Sender) {
	failures := 0
	for {
		if ctx.Err() != nil {
			return
		}
		rec, ok, err := o.sendHead(ctx, s)
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-o.kick:
				continue
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		if s.Permanent != nil && s.Permanent(err) {
			o.log.Error("outbox: record rejected by the broker, dropped", "seq", rec.Seq, "kind", rec.Kind, "path", rec.Path, "error", err)
			if rerr := o.remove(rec.Seq); rerr != nil {
				o.log.Error("outbox: removing a rejected record", "seq", rec.Seq, "error", rerr)
			}
			if o.onDrop != nil {
				o.onDrop(rec, err.Error())
			}
			continue
		}
		delay := time.Second << min(failures, 5)
		if s.Delay != nil {
			delay = s.Delay(failures)
		}
		failures++
		o.log.Warn("outbox: delivery failed, will retry", "seq", rec.Seq, "kind", rec.Kind, "retry_in", delay.String(), "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-o.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// Flush tries to deliver everything pending once, in order, stopping at the
// first failure or when ctx ends (used while draining).
func (o *Outbox) Flush(ctx context.Context, s Sender) error {
	for ctx.Err() == nil {
		rec, ok, err := o.sendHead(ctx, s)
		if !ok {
			return nil
		}
		if err != nil {
			if s.Permanent != nil && s.Permanent(err) {
				_ = o.remove(rec.Seq)
				if o.onDrop != nil {
					o.onDrop(rec, err.Error())
				}
				continue
			}
			return err
		}
	}
	return ctx.Err()
}

// sendHead delivers the oldest record; ok is false when there is none.
func (o *Outbox) sendHead(ctx context.Context, s Sender) (Record, bool, error) {
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	rec, uncertain, ok := o.head()
	if !ok {
		return Record{}, false, nil
	}
	return rec, true, o.deliver(ctx, s, rec, uncertain)
}

func (o *Outbox) deliver(ctx context.Context, s Sender, rec Record, uncertain bool) error {
	// A keyed record is safe to send again as it is; Verify is only for
	// records from before keys.
	if uncertain && s.Verify != nil && rec.Key == "" {
		delivered, err := s.Verify(ctx, rec)
		if err != nil {
			return err
		}
		if delivered {
			o.log.Info("outbox: record already delivered before a restart, not sent again", "seq", rec.Seq, "kind", rec.Kind)
			return o.remove(rec.Seq)
		}
	}
	if err := s.Send(ctx, rec); err != nil {
		return err
	}
	if err := o.remove(rec.Seq); err != nil {
		return err
	}
	if s.OnDelivered != nil {
		s.OnDelivered(rec)
	}
	return nil
}
