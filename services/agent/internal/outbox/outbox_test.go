package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeBroker struct {
	mu        sync.Mutex
	up        bool
	delivered []int
	failNext  int
}

func (b *fakeBroker) send(_ context.Context, r Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.up {
		return errors.New("connection refused")
	}
	if b.failNext > 0 {
		b.failNext--
		return errors.New("HTTP 503")
	}
	var body struct{ N int }
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return err
	}
	b.delivered = append(b.delivered, body.N)
	return nil
}

func (b *fakeBroker) got() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.delivered...)
}

func (b *fakeBroker) setUp(up bool) {
	b.mu.Lock()
	b.up = up
	b.mu.Unlock()
}

func sender(b *fakeBroker) Sender {
	return Sender{Send: b.send, Delay: func(int) time.Duration { return 10 * time.Millisecond }}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendN(t *testing.T, o *Outbox, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := o.Append("event", "POST", "/api/v1/agents/x/events", map[string]int{"N": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestReplayInOrderAfterOutageAndRestart(t *testing.T) {
	dir := t.TempDir()
	b := &fakeBroker{}
	o, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx, sender(b)); close(done) }()
	appendN(t, o, 1, 5) // the broker is down: everything is spooled
	time.Sleep(50 * time.Millisecond)
	if n, _, _ := o.Stats(); n != 5 || len(b.got()) != 0 {
		t.Fatalf("pending %d, delivered %v", n, b.got())
	}
	cancel() // the agent stops while the broker is still down
	<-done

	files, _ := filepath.Glob(filepath.Join(dir, "*.rec"))
	if len(files) != 5 {
		t.Fatalf("%d record files on disk, want 5", len(files))
	}

	o2, err := Open(Options{Dir: dir}) // restart
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o2, 6, 7)
	b.setUp(true)
	b.failNext = 2 // a flaky broker on its way back
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go o2.Run(ctx2, sender(b))
	waitFor(t, "delivery", func() bool { n, _, _ := o2.Stats(); return n == 0 })
	if got := b.got(); !equal(got, seq(1, 7)) {
		t.Fatalf("delivered %v, want 1..7 in order, once each", got)
	}
	files, _ = filepath.Glob(filepath.Join(dir, "*.rec"))
	if len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
}

// stripKeys rewrites o's records as an earlier version wrote them: no key.
func stripKeys(t *testing.T, o *Outbox) {
	t.Helper()
	for i := range o.entries {
		o.entries[i].rec.Key = ""
		data, err := encodeRecord(o.entries[i].rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.writeAtomic(fileName(o.entries[i].rec.Seq), data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeysAreStableAndUnique: a record keeps its key across a restart, and
// no two records share one, even when sequence numbers start over.
func TestKeysAreStableAndUnique(t *testing.T) {
	dir := t.TempDir()
	o, _ := Open(Options{Dir: dir})
	appendN(t, o, 1, 3)
	keys := map[string]uint64{}
	for _, r := range o.Pending() {
		if r.Key == "" || keys[r.Key] != 0 {
			t.Fatalf("record %d: key %q empty or reused", r.Seq, r.Key)
		}
		keys[r.Key] = r.Seq
	}
	o2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range o2.Pending() {
		if keys[r.Key] != r.Seq {
			t.Fatalf("record %d came back with key %q", r.Seq, r.Key)
		}
	}
	if err := o2.Flush(context.Background(), sender(&fakeBroker{up: true})); err != nil {
		t.Fatal(err)
	}
	// The spool is empty, so sequence numbers restart at 1; keys must not.
	o3, _ := Open(Options{Dir: dir})
	appendN(t, o3, 1, 1)
	r := o3.Pending()[0]
	if r.Seq != 1 || keys[r.Key] != 0 {
		t.Fatalf("new record %d reuses key %q", r.Seq, r.Key)
	}
}

// TestUncertainKeyedHeadIsResentWithItsKey: after a crash the keyed head is
// sent again as it is (the broker dedups by key), without asking Verify.
func TestUncertainKeyedHeadIsResentWithItsKey(t *testing.T) {
	dir := t.TempDir()
	o, _ := Open(Options{Dir: dir})
	appendN(t, o, 1, 2)
	head := o.Pending()[0]
	o2, _ := Open(Options{Dir: dir})
	var sentKeys []string
	s := Sender{Send: func(_ context.Context, r Record) error { sentKeys = append(sentKeys, r.Key); return nil },
		Verify: func(context.Context, Record) (bool, error) {
			t.Error("Verify called for a keyed record")
			return false, nil
		}}
	if err := o2.Flush(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if len(sentKeys) != 2 || sentKeys[0] != head.Key {
		t.Fatalf("sent keys %v, want the head's key %q first", sentKeys, head.Key)
	}
}

func TestUncertainHeadIsVerifiedNotResent(t *testing.T) {
	dir := t.TempDir()
	o, _ := Open(Options{Dir: dir})
	appendN(t, o, 1, 3)
	stripKeys(t, o) // records of an earlier version
	// Simulate a crash right after record 1 reached the broker, before it
	// was removed: the broker has it, the spool still has it.
	b := &fakeBroker{up: true, delivered: []int{1}}
	o2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	verified := 0
	s := sender(b)
	s.Verify = func(_ context.Context, r Record) (bool, error) {
		verified++
		var body struct{ N int }
		_ = json.Unmarshal(r.Body, &body)
		for _, n := range b.got() {
			if n == body.N {
				return true, nil
			}
		}
		return false, nil
	}
	if err := o2.Flush(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := b.got(); !equal(got, seq(1, 3)) {
		t.Fatalf("delivered %v, want [1 2 3] without a duplicate", got)
	}
	if verified != 1 {
		t.Fatalf("verified %d records, want only the uncertain head", verified)
	}
}

func TestCorruptRecordIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	o, _ := Open(Options{Dir: dir})
	appendN(t, o, 1, 3)
	path := filepath.Join(dir, fileName(2))
	data, _ := os.ReadFile(path)
	data[len(data)-3] ^= 0x20 // flip a bit in the payload
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, tmpPref+"half-written"), []byte("brokkr-outbox/1 sha"), 0o600)
	o2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, r := range o2.Pending() {
		var body struct{ N int }
		_ = json.Unmarshal(r.Body, &body)
		ns = append(ns, body.N)
	}
	if !equal(ns, []int{1, 3}) {
		t.Fatalf("pending %v, want [1 3]", ns)
	}
	if _, err := os.Stat(filepath.Join(dir, badDir, fileName(2))); err != nil {
		t.Errorf("corrupt record not quarantined: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, tmpPref+"*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	// New records continue after the highest sequence seen.
	r, _ := o2.Append("event", "POST", "/p", map[string]int{"N": 4})
	if r.Seq != 4 {
		t.Errorf("seq = %d, want 4", r.Seq)
	}
}

func TestBoundedEvictsOldest(t *testing.T) {
	var dropped []uint64
	o, err := Open(Options{Dir: t.TempDir(), MaxBytes: 1000, OnDrop: func(r Record, reason string) {
		if !strings.Contains(reason, "full") {
			t.Errorf("reason %q", reason)
		}
		dropped = append(dropped, r.Seq)
	}})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o, 1, 20)
	n, bytes, d := o.Stats()
	if bytes > 1000 || n == 0 || int(d) != len(dropped) || len(dropped)+n != 20 {
		t.Fatalf("records %d bytes %d dropped %d (%v)", n, bytes, d, dropped)
	}
	if dropped[0] != 1 || o.Pending()[n-1].Seq != 20 {
		t.Fatalf("evicted %v, newest %d", dropped, o.Pending()[n-1].Seq)
	}
	if _, err := o.Append("event", "POST", "/p", strings.Repeat("x", 2000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestPermanentRejectionIsDropped(t *testing.T) {
	o, _ := Open(Options{})
	appendN(t, o, 1, 2)
	var dropped []uint64
	o.onDrop = func(r Record, _ string) { dropped = append(dropped, r.Seq) }
	b := &fakeBroker{up: true}
	s := sender(b)
	first := true
	s.Send = func(ctx context.Context, r Record) error {
		if first {
			first = false
			return errors.New("HTTP 422")
		}
		return b.send(ctx, r)
	}
	s.Permanent = func(err error) bool { return strings.Contains(err.Error(), "422") }
	if err := o.Flush(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !equal(b.got(), []int{2}) || len(dropped) != 1 || dropped[0] != 1 {
		t.Fatalf("delivered %v dropped %v", b.got(), dropped)
	}
}
