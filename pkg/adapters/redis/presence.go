package redis

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
)

// PresenceTTL is how long a replica's report of a connected agent stays
// valid in Redis; replicas refresh every PresenceTTL/3, so a replica that
// dies stops counting within PresenceTTL.
const PresenceTTL = 15 * time.Second

// Presence shares which agents hold a target-state long-poll across the
// api replicas (the fleet's "connected now", docs/compatibility.md#fleet-connected).
// Each replica writes its own holders into one hash, field = agent id,
// value = "<connected since>|<valid until>" in Unix milliseconds; readers
// merge it with their own and drop expired fields. One key, no SCAN.
type Presence struct {
	client goredis.UniversalClient
	key    string
	local  func() map[uuid.UUID]time.Time
	log    *slog.Logger
}

var _ fleet.Presence = (*Presence)(nil)

// NewPresence returns the presence of one tenant (schema); local lists this
// replica's holders (targetstate.Index.Holding).
func NewPresence(client goredis.UniversalClient, tenant string, local func() map[uuid.UUID]time.Time, log *slog.Logger) *Presence {
	if tenant == "" {
		tenant = "public"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Presence{client: client, key: "brokkr:" + tenant + ":presence", local: local, log: log}
}

// WithKey replaces the hash's key (tests use their own namespace).
func (p *Presence) WithKey(key string) *Presence { p.key = key; return p }

// Publish writes this replica's holders with a fresh expiry.
func (p *Presence) Publish(ctx context.Context) error {
	held := p.local()
	if len(held) == 0 {
		return nil
	}
	until := time.Now().Add(PresenceTTL).UnixMilli()
	values := make([]any, 0, 2*len(held))
	for id, since := range held {
		values = append(values, id.String(), strconv.FormatInt(since.UnixMilli(), 10)+"|"+strconv.FormatInt(until, 10))
	}
	pipe := p.client.TxPipeline()
	pipe.HSet(ctx, p.key, values...)
	// The key outlives its fields only briefly when every replica stops.
	pipe.PExpire(ctx, p.key, 2*PresenceTTL)
	_, err := pipe.Exec(ctx)
	return err
}

// Run publishes every PresenceTTL/3 until ctx ends. A failed publish is
// logged and retried at the next tick: the agents on this replica then
// vanish from the other replicas' answers after PresenceTTL, never from
// this one's.
func (p *Presence) Run(ctx context.Context) {
	t := time.NewTicker(PresenceTTL / 3)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := p.Publish(pctx); err != nil && ctx.Err() == nil {
			p.log.Debug("presence not published", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Connected merges this replica's holders with the unexpired ones the
// others published; an agent seen on several keeps its earliest time.
// With Redis unreachable it answers this replica's holders only: the fleet
// view degrades rather than fails (docs/operations.md#fleet-record).
func (p *Presence) Connected(ctx context.Context) (map[uuid.UUID]time.Time, error) {
	out := p.local()
	fields, err := p.client.HGetAll(ctx, p.key).Result()
	if err != nil {
		p.log.Warn("presence of other replicas unavailable; answering this replica's connections only", "error", err)
		return out, nil
	}
	now := time.Now().UnixMilli()
	var expired []string
	for field, value := range fields {
		id, err1 := uuid.Parse(field)
		sinceS, untilS, ok := strings.Cut(value, "|")
		since, err2 := strconv.ParseInt(sinceS, 10, 64)
		until, err3 := strconv.ParseInt(untilS, 10, 64)
		if err1 != nil || !ok || err2 != nil || err3 != nil || until < now {
			expired = append(expired, field)
			continue
		}
		at := time.UnixMilli(since).UTC()
		if cur, seen := out[id]; !seen || at.Before(cur) {
			out[id] = at
		}
	}
	if len(expired) > 0 {
		// Best effort: a field another replica refreshed meanwhile is
		// rewritten at its next tick.
		_ = p.client.HDel(ctx, p.key, expired...).Err()
	}
	return out, nil
}
