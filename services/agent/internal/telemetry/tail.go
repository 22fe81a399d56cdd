package telemetry

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// LogSource opens a container's log: followed, each line prefixed with its
// RFC 3339 timestamp (the kubelet's "timestamps" option), starting at since
// (nil: the container's first line; a time has one-second resolution).
// The stream ends when the container stops or the connection drops.
type LogSource interface {
	Stream(ctx context.Context, namespace, pod, container string, since *time.Time) (io.ReadCloser, error)
}

// LinesPerSecond is the per-container rate limit (0.9.1's fixed 100
// lines/s); the bucket holds one second of lines.
const LinesPerSecond = 100

// tail follows one container's log and emits its lines.
type tail struct {
	src     LogSource
	out     Emitter
	agentID uuid.UUID
	at      Source
	now     func() time.Time
	log     *slog.Logger
	// reopen is the first pause before opening a stream again (doubling
	// to maxReopen while streams fail at once).
	reopen, maxReopen time.Duration

	// last is the newest line's timestamp: a reopened stream starts there
	// and lines at or before it are skipped (sinceTime has one-second
	// resolution).
	last time.Time

	limiter *rate.Limiter
	// Lines over the rate: counted since the first one's timestamp
	// (dropSince), a gap emitted once lines flow again or after a second
	// of dropping (dropOpened, on the clock).
	dropped    int64
	dropSince  time.Time
	dropOpened time.Time
}

func newTail(src LogSource, out Emitter, agentID uuid.UUID, at Source, since time.Time, now func() time.Time, log *slog.Logger) *tail {
	return &tail{src: src, out: out, agentID: agentID, at: at, last: since, now: now, log: log,
		reopen: time.Second, maxReopen: 30 * time.Second,
		limiter: rate.NewLimiter(LinesPerSecond, LinesPerSecond)}
}

// run follows the log until ctx ends, reopening the stream after it ends
// (a restarted container, a dropped connection) from the last line seen.
func (t *tail) run(ctx context.Context) {
	defer t.flushGap()
	failures := 0
	for ctx.Err() == nil {
		var since *time.Time
		if !t.last.IsZero() {
			s := t.last
			since = &s
		}
		rc, err := t.src.Stream(ctx, t.at.Namespace, t.at.Pod, t.at.Container, since)
		if err == nil {
			n := t.read(ctx, rc)
			_ = rc.Close()
			if n > 0 {
				failures = 0
			}
		} else if ctx.Err() == nil {
			t.log.Debug("opening a container log failed", "namespace", t.at.Namespace, "pod", t.at.Pod,
				"container", t.at.Container, "error", err)
		}
		d := min(t.reopen<<min(failures, 10), t.maxReopen)
		failures++
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
}

// read emits the lines of one stream and returns how many it read.
func (t *tail) read(ctx context.Context, r io.Reader) int {
	// Room for the timestamp prefix and one byte more than a kept line,
	// so a longer line shows as a buffer-full chunk.
	br := bufio.NewReaderSize(r, domaintelemetry.MaxLineBytes+64)
	n := 0
	for ctx.Err() == nil {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			line := string(chunk)
			if errors.Is(err, bufio.ErrBufferFull) {
				// Too long: keep the start, skip to the end of the line.
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
			}
			n++
			t.line(line)
		}
		if err != nil {
			return n
		}
	}
	return n
}

// line handles one raw line: timestamp, duplicate check, truncation, rate
// limit.
func (t *tail) line(raw string) {
	raw = strings.TrimRight(raw, "\r\n")
	ts, text := splitTimestamp(raw)
	if ts.IsZero() {
		ts = t.now()
	} else if !t.last.IsZero() && !ts.After(t.last) {
		return // already sent before the stream was reopened
	}
	if !ts.Before(t.last) {
		t.last = ts
	}
	text = domaintelemetry.TruncateLine(text)
	now := t.now()
	if !t.limiter.AllowN(now, 1) {
		if t.dropped == 0 {
			t.dropSince, t.dropOpened = ts, now
		} else if now.Sub(t.dropOpened) >= time.Second {
			t.flushGap()
			t.dropSince, t.dropOpened = ts, now
		}
		t.dropped++
		return
	}
	t.flushGap()
	t.out.Emit(LineFrame(domaintelemetry.PodLogLine{AgentID: t.agentID, StackID: t.at.StackID, Namespace: t.at.Namespace,
		Pod: t.at.Pod, Container: t.at.Container, TS: ts, Line: text}))
}

// flushGap emits the rate-limit gap counted so far, if any.
func (t *tail) flushGap() {
	if t.dropped == 0 {
		return
	}
	t.out.Emit(GapFrame(domaintelemetry.LogGap{AgentID: t.agentID, StackID: t.at.StackID, Namespace: t.at.Namespace, Pod: t.at.Pod,
		Container: t.at.Container, SinceTS: t.dropSince, DroppedCount: t.dropped, Reason: domaintelemetry.GapRateLimit}))
	t.dropped = 0
}

// splitTimestamp splits "2026-12-07T02:10:29.123456789Z text" into its
// time and text; a line without one keeps its text and a zero time.
func splitTimestamp(raw string) (time.Time, string) {
	i := strings.IndexByte(raw, ' ')
	if i <= 0 {
		if ts, err := time.Parse(time.RFC3339Nano, raw); err == nil {
			return ts, "" // an empty line
		}
		return time.Time{}, raw
	}
	ts, err := time.Parse(time.RFC3339Nano, raw[:i])
	if err != nil {
		return time.Time{}, raw
	}
	return ts, raw[i+1:]
}
