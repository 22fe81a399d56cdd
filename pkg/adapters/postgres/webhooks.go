package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// Subscriptions, Deliveries and Outbox are the webhook repositories:
// subscriptions (with their encrypted secrets), deliveries (fan-out rows,
// broker leases and agent claims) and the outbox relay's side of
// outbox_events. All join the transaction InTx put in the context.
type (
	Subscriptions struct{ s *Store }
	Deliveries    struct{ s *Store }
	Outbox        struct{ s *Store }
)

// NewSubscriptions returns the subscription repository over s.
func NewSubscriptions(s *Store) *Subscriptions { return &Subscriptions{s: s} }

// NewDeliveries returns the delivery repository over s.
func NewDeliveries(s *Store) *Deliveries { return &Deliveries{s: s} }

// NewOutbox returns the outbox relay's repository over s.
func NewOutbox(s *Store) *Outbox { return &Outbox{s: s} }

// jsonList scans an array selected as to_json(...): database/sql cannot
// scan a PostgreSQL array into a slice, and JSON keeps NULL (nil) apart
// from [].
type jsonList[T any] []T

func (j *jsonList[T]) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*j = nil
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("jsonList: cannot scan %T", src)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*j = out
	return nil
}

// jsonStrings scans a text[] selected as to_json(...).
type jsonStrings = jsonList[string]

const subscriptionCols = `s.id, s.name, s.url_encrypted, s.auth_header_encrypted, s.signing_secret_encrypted,
	to_json(s.event_types) AS event_types, s.filters, to_json(s.target_labels) AS target_labels, s.enabled,
	s.max_retries, s.timeout_seconds, s.created_at, s.updated_at, s.created_by`

// subscriptionRow is a subscription as subscriptionCols selects it: the
// arrays come as JSON (jsonStrings) and filters as jsonb text, decoded by
// domain(), which also derives the Has* flags; every other column scans
// into the embedded webhook.Subscription by name.
type subscriptionRow struct {
	webhook.Subscription
	EventTypes   jsonStrings
	Filters      []byte
	TargetLabels jsonStrings
}

func (r subscriptionRow) domain() webhook.Subscription {
	s := r.Subscription
	s.EventTypes, s.TargetLabels = r.EventTypes, r.TargetLabels
	if s.EventTypes == nil {
		s.EventTypes = []string{}
	}
	if len(r.Filters) > 0 && string(r.Filters) != "null" {
		var f webhook.Filters
		if json.Unmarshal(r.Filters, &f) == nil {
			s.Filters = &f
		}
	}
	s.HasURL = len(s.URLEncrypted) > 0
	s.HasAuthHeader = len(s.AuthHeaderEncrypted) > 0
	s.HasSigningKey = len(s.SigningSecretEncrypted) > 0
	return s
}

func filtersJSON(f *webhook.Filters) any {
	if f == nil || f.Empty() {
		return nil
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// ListSubscriptions returns every subscription, newest first.
func (r *Subscriptions) ListSubscriptions(ctx context.Context) ([]webhook.Subscription, error) {
	return selectAs[subscriptionRow](ctx, r.s.q(ctx), `SELECT `+subscriptionCols+` FROM webhook_subscriptions s
		ORDER BY s.created_at DESC, s.id`)
}

// EnabledSubscriptions returns the subscriptions fan-out considers.
func (r *Subscriptions) EnabledSubscriptions(ctx context.Context) ([]webhook.Subscription, error) {
	return selectAs[subscriptionRow](ctx, r.s.q(ctx), `SELECT `+subscriptionCols+` FROM webhook_subscriptions s
		WHERE s.enabled ORDER BY s.created_at, s.id`)
}

// CreateSubscription inserts sub (ciphertexts already set), filling id and
// timestamps.
func (r *Subscriptions) CreateSubscription(ctx context.Context, sub *webhook.Subscription) error {
	var row subscriptionRow
	err := r.s.q(ctx).GetContext(ctx, &row, `INSERT INTO webhook_subscriptions AS s
		(name, url_encrypted, auth_header_encrypted, signing_secret_encrypted, event_types, filters, target_labels,
		 enabled, max_retries, timeout_seconds, created_by)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11) RETURNING `+subscriptionCols,
		sub.Name, sub.URLEncrypted, nilIfEmpty(sub.AuthHeaderEncrypted), nilIfEmpty(sub.SigningSecretEncrypted),
		sub.EventTypes, filtersJSON(sub.Filters), nilSlice(sub.TargetLabels), sub.Enabled, sub.MaxRetries,
		sub.TimeoutSeconds, sub.CreatedBy)
	if err != nil {
		return mapErr(err)
	}
	*sub = row.domain()
	return nil
}

// GetSubscription returns one subscription.
func (r *Subscriptions) GetSubscription(ctx context.Context, id uuid.UUID) (webhook.Subscription, error) {
	return getAs[subscriptionRow](ctx, r.s.q(ctx), "webhook_not_found", "Webhook subscription not found",
		`SELECT `+subscriptionCols+` FROM webhook_subscriptions s WHERE s.id = $1`, id)
}

// UpdateSubscription locks the row, lets fn change it and writes it back.
func (r *Subscriptions) UpdateSubscription(ctx context.Context, id uuid.UUID, fn func(*webhook.Subscription) error) (webhook.Subscription, error) {
	var out webhook.Subscription
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		var row subscriptionRow
		err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+subscriptionCols+` FROM webhook_subscriptions s
			WHERE s.id = $1 FOR UPDATE`, id)
		if err != nil {
			return notFound(err, "webhook_not_found", "Webhook subscription not found")
		}
		sub := row.domain()
		if err := fn(&sub); err != nil {
			return err
		}
		var updated subscriptionRow
		err = r.s.q(ctx).GetContext(ctx, &updated, `UPDATE webhook_subscriptions AS s SET name = $2, url_encrypted = $3,
			auth_header_encrypted = $4, signing_secret_encrypted = $5, event_types = $6, filters = $7::jsonb,
			target_labels = $8, enabled = $9, max_retries = $10, timeout_seconds = $11
			WHERE s.id = $1 RETURNING `+subscriptionCols,
			id, sub.Name, sub.URLEncrypted, nilIfEmpty(sub.AuthHeaderEncrypted), nilIfEmpty(sub.SigningSecretEncrypted),
			sub.EventTypes, filtersJSON(sub.Filters), nilSlice(sub.TargetLabels), sub.Enabled, sub.MaxRetries, sub.TimeoutSeconds)
		if err != nil {
			return mapErr(err)
		}
		out = updated.domain()
		return nil
	})
	return out, err
}

// DeleteSubscription hard-deletes a subscription; its deliveries go by
// cascade.
func (r *Subscriptions) DeleteSubscription(ctx context.Context, id uuid.UUID) (webhook.Subscription, error) {
	return getAs[subscriptionRow](ctx, r.s.q(ctx), "webhook_not_found", "Webhook subscription not found",
		`DELETE FROM webhook_subscriptions AS s WHERE s.id = $1 RETURNING `+subscriptionCols, id)
}

const deliveryCols = `d.id, d.subscription_id, d.event_type, d.event_id, d.payload, to_json(d.target_labels) AS target_labels,
	d.status, d.acquired_by, d.acquired_until, d.attempts, d.last_attempt_at, d.next_retry_at, d.last_error,
	d.last_status_code, d.created_at, d.completed_at`

// deliveryRow is a delivery as deliveryCols selects it: target_labels
// comes as JSON (jsonStrings); every other column scans into the embedded
// webhook.Delivery by name.
type deliveryRow struct {
	webhook.Delivery
	TargetLabels jsonStrings
}

func (r deliveryRow) domain() webhook.Delivery {
	d := r.Delivery
	d.TargetLabels = r.TargetLabels
	return d
}

const claimedCols = deliveryCols + `, s.url_encrypted, s.auth_header_encrypted, s.signing_secret_encrypted,
	s.timeout_seconds, s.max_retries`

// claimedRow is a claimed delivery as claimedCols selects it; target_labels
// as in deliveryRow.
type claimedRow struct {
	webhooks.Claimed
	TargetLabels jsonStrings
}

func (r claimedRow) domain() webhooks.Claimed {
	c := r.Claimed
	c.TargetLabels = r.TargetLabels
	return c
}

func claimedList(rows []claimedRow) []webhooks.Claimed {
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].CreatedAt.Equal(rows[j].CreatedAt) {
			return rows[i].CreatedAt.Before(rows[j].CreatedAt)
		}
		return rows[i].ID.String() < rows[j].ID.String()
	})
	out := make([]webhooks.Claimed, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out
}

// ListDeliveries returns a subscription's deliveries, newest first.
func (r *Deliveries) ListDeliveries(ctx context.Context, q webhooks.DeliveryQuery) ([]webhook.Delivery, error) {
	args := []any{q.SubscriptionID, q.Limit, q.Offset}
	cond := ""
	if q.Status != "" {
		args = append(args, q.Status)
		cond = " AND d.status = $4"
	}
	return selectAs[deliveryRow](ctx, r.s.q(ctx), `SELECT `+deliveryCols+` FROM webhook_deliveries d
		WHERE d.subscription_id = $1`+cond+` ORDER BY d.created_at DESC, d.id LIMIT $2 OFFSET $3`, args...)
}

// RetryDeadDelivery moves a dead delivery back to pending: attempts reset,
// no lease, no retry time, not enqueued (so the relay's sweep queues a
// broker-mode delivery at once).
func (r *Deliveries) RetryDeadDelivery(ctx context.Context, subscriptionID, deliveryID uuid.UUID) (webhook.Delivery, error) {
	var row deliveryRow
	err := r.s.q(ctx).GetContext(ctx, &row, `UPDATE webhook_deliveries d SET status = 'pending', attempts = 0,
			acquired_by = NULL, acquired_until = NULL, next_retry_at = NULL, enqueued_at = NULL, completed_at = NULL
		WHERE d.id = $1 AND d.subscription_id = $2 AND d.status = 'dead'
		RETURNING `+deliveryCols, deliveryID, subscriptionID)
	if errors.Is(err, sql.ErrNoRows) {
		var status string
		err = r.s.q(ctx).GetContext(ctx, &status, `SELECT status FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2`,
			deliveryID, subscriptionID)
		if errors.Is(err, sql.ErrNoRows) {
			return webhook.Delivery{}, domain.NotFoundCode("delivery_not_found", "Delivery not found")
		}
		if err != nil {
			return webhook.Delivery{}, mapErr(err)
		}
		return webhook.Delivery{}, domain.Conflict("Only a dead delivery can be retried (this one is " + status + ")")
	}
	if err != nil {
		return webhook.Delivery{}, mapErr(err)
	}
	return row.domain(), nil
}

// WebhookAgent returns a live agent's status and labels.
func (r *Deliveries) WebhookAgent(ctx context.Context, id uuid.UUID) (webhooks.AgentInfo, error) {
	var info webhooks.AgentInfo
	if err := r.s.q(ctx).GetContext(ctx, &info.Status, `SELECT status FROM agents WHERE id = $1 AND deleted_at IS NULL`, id); err != nil {
		return info, notFound(err, "agent_not_found", "Agent not found")
	}
	err := r.s.q(ctx).SelectContext(ctx, &info.Labels, `SELECT label FROM agent_labels WHERE agent_id = $1 ORDER BY label`, id)
	return info, mapErr(err)
}

// claimable selects agent-mode deliveries an agent with labels $1 may
// take: pending, due for retry, or held under an expired lease.
const claimable = `d.target_labels IS NOT NULL AND d.target_labels <@ $1::text[]
	AND (d.status = 'pending' OR (d.status = 'failed' AND d.next_retry_at <= now())
	     OR (d.status = 'acquired' AND d.acquired_until < now()))`

// ClaimAgentDeliveries atomically acquires up to limit deliveries for an
// agent; concurrent claims skip each other's rows.
func (r *Deliveries) ClaimAgentDeliveries(ctx context.Context, agentID uuid.UUID, labels []string, limit int, lease time.Duration) ([]webhooks.Claimed, error) {
	var rows []claimedRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `WITH picked AS (
			SELECT d.id FROM webhook_deliveries d WHERE `+claimable+`
			ORDER BY d.created_at, d.id LIMIT $2 FOR UPDATE SKIP LOCKED)
		UPDATE webhook_deliveries d SET status = 'acquired', acquired_by = $3,
			acquired_until = now() + $4 * interval '1 millisecond'
		FROM picked, webhook_subscriptions s
		WHERE d.id = picked.id AND s.id = d.subscription_id
		RETURNING `+claimedCols, labels, limit, agentID, lease.Milliseconds())
	return claimedList(rows), mapErr(err)
}

// ClaimableAgentDeliveries previews ClaimAgentDeliveries without claiming.
func (r *Deliveries) ClaimableAgentDeliveries(ctx context.Context, labels []string, limit int) ([]webhooks.Claimed, error) {
	var rows []claimedRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+claimedCols+` FROM webhook_deliveries d
		JOIN webhook_subscriptions s ON s.id = d.subscription_id
		WHERE `+claimable+` ORDER BY d.created_at, d.id LIMIT $2`, labels, limit)
	return claimedList(rows), mapErr(err)
}

// LockDelivery reads and locks a delivery with its subscription's secrets.
func (r *Deliveries) LockDelivery(ctx context.Context, id uuid.UUID) (webhooks.Claimed, error) {
	var row claimedRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+claimedCols+` FROM webhook_deliveries d
		JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE d.id = $1 FOR UPDATE OF d`, id)
	if err != nil {
		return webhooks.Claimed{}, notFound(err, "delivery_not_found", "Delivery not found")
	}
	return row.domain(), nil
}

// recordSet is the SET clause of an attempt: success keeps acquired_by
// (who delivered), as the original does; anything else clears the claim.
const recordSet = `status = $2::text, attempts = $3, next_retry_at = $4, last_error = $5, last_status_code = $6,
	last_attempt_at = now(),
	completed_at = CASE WHEN $2::text IN ('success', 'dead') THEN now() END,
	acquired_until = NULL,
	acquired_by = CASE WHEN $2::text = 'success' THEN acquired_by END`

func recordArgs(id uuid.UUID, a webhooks.Attempt) []any {
	return []any{id, a.Decision.Status, a.Decision.Attempts, a.Decision.NextRetryAt, a.LastError, a.StatusCode}
}

// RecordAgentAttempt stores an agent's attempt (the caller holds the row lock).
func (r *Deliveries) RecordAgentAttempt(ctx context.Context, id uuid.UUID, a webhooks.Attempt) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET `+recordSet+` WHERE id = $1`, recordArgs(id, a)...)
	return mapErr(err)
}

// RecordBrokerAttempt stores a broker attempt if the lease is still ours.
func (r *Deliveries) RecordBrokerAttempt(ctx context.Context, id uuid.UUID, lease time.Time, a webhooks.Attempt) (bool, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET `+recordSet+`
		WHERE id = $1 AND status = 'acquired' AND acquired_by IS NULL AND acquired_until = $7`,
		append(recordArgs(id, a), lease)...)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AcquireBroker takes a broker-mode delivery that is pending, due for
// retry, or held under an expired lease.
func (r *Deliveries) AcquireBroker(ctx context.Context, id uuid.UUID, margin time.Duration) (webhooks.Claimed, bool, error) {
	var row claimedRow
	err := r.s.q(ctx).GetContext(ctx, &row, `UPDATE webhook_deliveries d SET status = 'acquired', acquired_by = NULL,
			acquired_until = clock_timestamp() + make_interval(secs => s.timeout_seconds) + $2 * interval '1 millisecond'
		FROM webhook_subscriptions s
		WHERE d.id = $1 AND s.id = d.subscription_id AND d.target_labels IS NULL
		  AND (d.status = 'pending' OR (d.status = 'failed' AND d.next_retry_at <= now())
		       OR (d.status = 'acquired' AND d.acquired_until < now()))
		RETURNING `+claimedCols, id, margin.Milliseconds())
	if isNoRows(err) {
		return webhooks.Claimed{}, false, nil
	}
	if err != nil {
		return webhooks.Claimed{}, false, mapErr(err)
	}
	return row.domain(), true, nil
}

// DeliveryState reads a delivery's progress.
func (r *Deliveries) DeliveryState(ctx context.Context, id uuid.UUID) (webhooks.DeliveryState, error) {
	var row struct {
		Status        string     `db:"status"`
		AgentMode     bool       `db:"agent_mode"`
		NextRetryAt   *time.Time `db:"next_retry_at"`
		AcquiredUntil *time.Time `db:"acquired_until"`
	}
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT status, target_labels IS NOT NULL AS agent_mode, next_retry_at, acquired_until
		FROM webhook_deliveries WHERE id = $1`, id)
	if isNoRows(err) {
		return webhooks.DeliveryState{}, nil
	}
	if err != nil {
		return webhooks.DeliveryState{}, mapErr(err)
	}
	return webhooks.DeliveryState{Found: true, Status: row.Status, AgentMode: row.AgentMode,
		NextRetryAt: row.NextRetryAt, AcquiredUntil: row.AcquiredUntil}, nil
}

// ReleaseBroker hands an acquired delivery back to pending.
func (r *Deliveries) ReleaseBroker(ctx context.Context, id uuid.UUID, lease time.Time) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', acquired_until = NULL
		WHERE id = $1 AND status = 'acquired' AND acquired_by IS NULL AND acquired_until = $2`, id, lease)
	return mapErr(err)
}

// ClaimOutbox locks undispatched events, oldest first.
func (r *Outbox) ClaimOutbox(ctx context.Context, limit int) ([]webhooks.OutboxEvent, error) {
	var rows []struct {
		ID      uuid.UUID `db:"id"`
		Type    string    `db:"event_type"`
		Payload string    `db:"payload"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT id, event_type, payload::text AS payload FROM outbox_events
		WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	out := make([]webhooks.OutboxEvent, len(rows))
	for i, row := range rows {
		out[i] = webhooks.OutboxEvent{ID: row.ID, Type: row.Type, Payload: row.Payload}
	}
	return out, mapErr(err)
}

// MarkDispatched stamps events as relayed.
func (r *Outbox) MarkDispatched(ctx context.Context, ids []uuid.UUID) error {
	return stampNow(ctx, r.s.q(ctx), "outbox_events", "dispatched_at", ids)
}

// InsertDeliveries inserts deliveries (target labels copied from the
// subscription) and returns the ids inserted; existing (event,
// subscription) pairs are skipped.
func (r *Deliveries) InsertDeliveries(ctx context.Context, ds []webhook.Delivery) ([]uuid.UUID, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	ids, subs, events := make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds))
	types, payloads := make([]string, len(ds)), make([]string, len(ds))
	for i, d := range ds {
		ids[i], subs[i], events[i] = d.ID.String(), d.SubscriptionID.String(), d.EventID.String()
		types[i], payloads[i] = d.EventType, d.Payload
	}
	var out []uuid.UUID
	err := r.s.q(ctx).SelectContext(ctx, &out, `INSERT INTO webhook_deliveries
			(id, subscription_id, event_id, event_type, payload, target_labels)
		SELECT x.id, x.sub, x.ev, x.typ, x.payload, s.target_labels
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) AS x(id, sub, ev, typ, payload)
		JOIN webhook_subscriptions s ON s.id = x.sub
		ON CONFLICT (event_id, subscription_id) DO NOTHING
		RETURNING id`, ids, subs, events, types, payloads)
	return out, mapErr(err)
}

// MarkEnqueued stamps deliveries as handed to the queue.
func (r *Deliveries) MarkEnqueued(ctx context.Context, ids []uuid.UUID) error {
	return stampNow(ctx, r.s.q(ctx), "webhook_deliveries", "enqueued_at", ids)
}

// StaleBrokerDeliveries locks broker-mode deliveries whose queue entry may
// be lost.
func (r *Deliveries) StaleBrokerDeliveries(ctx context.Context, grace time.Duration, limit int) ([]webhooks.StaleDelivery, error) {
	var rows []struct {
		ID       uuid.UUID `db:"id"`
		Status   string    `db:"status"`
		Attempts int       `db:"attempts"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT id, status, attempts FROM webhook_deliveries
		WHERE target_labels IS NULL AND COALESCE(enqueued_at, created_at) < now() - $1 * interval '1 millisecond'
		  AND (status = 'pending'
		       OR (status = 'failed' AND next_retry_at < now() - $1 * interval '1 millisecond')
		       OR (status = 'acquired' AND acquired_by IS NULL AND acquired_until < now()))
		ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, grace.Milliseconds(), limit)
	out := make([]webhooks.StaleDelivery, len(rows))
	for i, row := range rows {
		out[i] = webhooks.StaleDelivery{ID: row.ID, Status: row.Status, Attempts: row.Attempts}
	}
	return out, mapErr(err)
}

// ReleaseExpiredAgentLeases puts agent-held deliveries whose lease expired
// back to pending.
func (r *Deliveries) ReleaseExpiredAgentLeases(ctx context.Context) (int64, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'pending', acquired_by = NULL,
		acquired_until = NULL WHERE status = 'acquired' AND target_labels IS NOT NULL AND acquired_until < now()`)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// DeleteTerminalDeliveries deletes up to limit success/dead deliveries
// that completed before the cutoff.
func (r *Deliveries) DeleteTerminalDeliveries(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
		SELECT id FROM webhook_deliveries WHERE status IN ('success', 'dead') AND completed_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// DeleteDispatchedOutbox deletes up to limit relayed outbox events older
// than the cutoff.
func (r *Outbox) DeleteDispatchedOutbox(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM outbox_events WHERE id IN (
		SELECT id FROM outbox_events WHERE dispatched_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// EventSubject resolves the agent and stack an event is about and,
// optionally, their labels and annotations.
func (r *Outbox) EventSubject(ctx context.Context, agentID, stackID, objectID *uuid.UUID, labels bool) (webhook.Subject, error) {
	subj := webhook.Subject{AgentID: agentID, StackID: stackID}
	if stackID == nil && objectID != nil {
		var sid uuid.UUID
		err := r.s.q(ctx).GetContext(ctx, &sid, `SELECT stack_id FROM deployment_objects WHERE id = $1`, *objectID)
		switch {
		case err == nil:
			subj.StackID = &sid
		case !isNoRows(err):
			return subj, mapErr(err)
		}
	}
	if !labels || (subj.AgentID == nil && subj.StackID == nil) {
		return subj, nil
	}
	var rows []struct {
		Key   string  `db:"key"`
		Value *string `db:"value"`
	}
	// Labels have a NULL value, annotations a key and a value.
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
		SELECT label AS key, NULL::text AS value FROM agent_labels WHERE agent_id = $1
		UNION ALL SELECT key, value FROM agent_annotations WHERE agent_id = $1
		UNION ALL SELECT label, NULL FROM stack_labels WHERE stack_id = $2
		UNION ALL SELECT key, value FROM stack_annotations WHERE stack_id = $2`, subj.AgentID, subj.StackID)
	if err != nil {
		return subj, mapErr(err)
	}
	subj.Labels = []string{}
	subj.Annotations = map[string][]string{}
	for _, kv := range rows {
		if kv.Value == nil {
			subj.Labels = append(subj.Labels, kv.Key)
		} else {
			subj.Annotations[kv.Key] = append(subj.Annotations[kv.Key], *kv.Value)
		}
	}
	return subj, nil
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nilSlice(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s
}

// stampNow sets a timestamp column to now() on the rows of table whose
// ids are given (the relay's and the enqueuer's "done" marks); none is a
// no-op. table and column are constants of this file, never input.
func stampNow(ctx context.Context, q querier, table, column string, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = now() WHERE id = ANY($1::uuid[])`, webhookIDs(ids))
	return mapErr(err)
}

func webhookIDs(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

var (
	_ webhooks.SubscriptionRepository  = (*Subscriptions)(nil)
	_ webhooks.SubscriptionSource      = (*Subscriptions)(nil)
	_ webhooks.DeliveryRepository      = (*Deliveries)(nil)
	_ webhooks.AgentDeliveryRepository = (*Deliveries)(nil)
	_ webhooks.DeliveryQueue           = (*Deliveries)(nil)
	_ webhooks.BrokerAttempts          = (*Deliveries)(nil)
	_ webhooks.DeliveryCleanup         = (*Deliveries)(nil)
	_ webhooks.OutboxRepository        = (*Outbox)(nil)
)
