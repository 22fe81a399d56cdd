package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

var t0 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)

func stamp(ts time.Time, text string) string { return ts.Format(time.RFC3339Nano) + " " + text + "\n" }

func testTail(out Emitter, c *clock, since time.Time) *tail {
	at := Source{StackID: uuid.New(), Namespace: "ns", Pod: "web-1", Container: "app"}
	return newTail(nil, out, uuid.New(), at, since, c.Now, slog.New(slog.DiscardHandler))
}

func TestTailRateLimitEmitsOneGapWhenLinesFlowAgain(t *testing.T) {
	rec := newRecorder()
	c := &clock{t: t0}
	tl := testTail(rec, c, time.Time{})
	// 150 lines in the same instant: the bucket holds 100.
	for i := range 150 {
		tl.line(stamp(t0.Add(time.Duration(i)*time.Microsecond), fmt.Sprintf("line %d", i)))
	}
	if n := len(lines(rec.all())); n != LinesPerSecond {
		t.Fatalf("%d lines passed the limit, want %d", n, LinesPerSecond)
	}
	if g := gaps(rec.all()); len(g) != 0 {
		t.Fatalf("gap emitted while still dropping within the first second: %+v", g)
	}
	// Half a second later the bucket has 50 tokens again: the next line
	// passes, preceded by one gap counting the 50 dropped lines.
	c.Add(500 * time.Millisecond)
	tl.line(stamp(t0.Add(time.Second), "after"))
	fs := rec.all()
	g := gaps(fs)
	if len(g) != 1 || g[0].Reason != domaintelemetry.GapRateLimit || g[0].DroppedCount != 50 || !g[0].SinceTS.Equal(t0.Add(100*time.Microsecond)) ||
		g[0].Pod != "web-1" || g[0].Container != "app" || g[0].StackID != tl.at.StackID || g[0].AgentID != tl.agentID {
		t.Fatalf("gap = %+v", g)
	}
	if fs[len(fs)-2].Type != domaintelemetry.TypeLogGap || lines(fs[len(fs)-1:])[0].Line != "after" {
		t.Fatalf("want the gap right before the next line, got %s", describe(fs[len(fs)-2:]))
	}
}

func TestTailRateLimitEmitsAGapPerSecondOfDropping(t *testing.T) {
	rec := newRecorder()
	c := &clock{t: t0}
	tl := testTail(rec, c, time.Time{})
	tl.limiter = rate.NewLimiter(0, 0) // nothing passes
	for i := range 5 {
		tl.line(stamp(t0.Add(time.Duration(i)*time.Millisecond), "x"))
	}
	c.Add(time.Second)
	tl.line(stamp(t0.Add(time.Second), "y")) // a second of dropping: gap for the first 5
	tl.line(stamp(t0.Add(time.Second+time.Millisecond), "z"))
	g := gaps(rec.all())
	if len(g) != 1 || g[0].DroppedCount != 5 || !g[0].SinceTS.Equal(t0) {
		t.Fatalf("gaps after a second of dropping = %+v", g)
	}
	tl.flushGap() // the tail ending
	g = gaps(rec.all())
	if len(g) != 2 || g[1].DroppedCount != 2 || !g[1].SinceTS.Equal(t0.Add(time.Second)) {
		t.Fatalf("gaps = %+v", g)
	}
	if n := len(lines(rec.all())); n != 0 {
		t.Fatalf("%d lines passed a closed limiter", n)
	}
}

func TestTailTruncatesLongLinesAndKeepsTheNext(t *testing.T) {
	rec := newRecorder()
	c := &clock{t: t0}
	tl := testTail(rec, c, time.Time{})
	long := strings.Repeat("é", 20<<10) // 40 KiB, two bytes a rune
	in := stamp(t0, long) + stamp(t0.Add(time.Millisecond), "short") + stamp(t0.Add(2*time.Millisecond), "")
	if n := tl.read(context.Background(), strings.NewReader(in)); n != 3 {
		t.Fatalf("read %d lines, want 3", n)
	}
	ls := lines(rec.all())
	if len(ls) != 3 {
		t.Fatalf("lines = %d", len(ls))
	}
	if len(ls[0].Line) != domaintelemetry.MaxLineBytes || ls[0].Line != long[:domaintelemetry.MaxLineBytes] || !ls[0].TS.Equal(t0) {
		t.Fatalf("long line kept %d bytes, want %d", len(ls[0].Line), domaintelemetry.MaxLineBytes)
	}
	if ls[1].Line != "short" || ls[2].Line != "" {
		t.Fatalf("following lines = %q, %q", ls[1].Line, ls[2].Line)
	}
}

func TestTailSkipsLinesAlreadySent(t *testing.T) {
	rec := newRecorder()
	c := &clock{t: t0}
	tl := testTail(rec, c, time.Time{})
	tl.read(context.Background(), strings.NewReader(stamp(t0, "a")+stamp(t0.Add(time.Millisecond), "b")))
	// The stream is reopened with sinceTime (one-second resolution): the
	// server sends the second again.
	tl.read(context.Background(), strings.NewReader(stamp(t0, "a")+stamp(t0.Add(time.Millisecond), "b")+stamp(t0.Add(2*time.Millisecond), "c")))
	var got []string
	for _, l := range lines(rec.all()) {
		got = append(got, l.Line)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("lines = %v, want a,b,c", got)
	}
	if !tl.last.Equal(t0.Add(2 * time.Millisecond)) {
		t.Fatalf("last = %v", tl.last)
	}
}

func TestTailReopensFromTheLastLine(t *testing.T) {
	rec := newRecorder()
	src := newFakeLogs()
	c := &clock{t: t0}
	tl := testTail(rec, c, time.Time{})
	tl.src = src
	tl.reopen, tl.maxReopen = time.Millisecond, time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tl.run(ctx) }()
	k := "ns/web-1/app"
	src.waitStreams(t, k)
	w := src.writer(k)
	_, _ = w.Write([]byte(stamp(t0.Add(3*time.Second), "first")))
	rec.waitFor(t, "the first line", func(fs []Frame) bool { return len(lines(fs)) == 1 })
	_ = w.Close() // the container restarted
	// The tail opens the log again, from the last line's time.
	deadline := time.After(30 * time.Second)
	for {
		src.mu.Lock()
		n := len(src.since[k])
		src.mu.Unlock()
		if n >= 2 {
			break
		}
		select {
		case <-src.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("the tail did not reopen the stream")
		}
	}
	cancel()
	<-done
	src.mu.Lock()
	defer src.mu.Unlock()
	if s := src.since[k]; s[0] != nil || s[1] == nil || !s[1].Equal(t0.Add(3*time.Second)) {
		t.Fatalf("sinceTime of the opens = %v", s)
	}
}
