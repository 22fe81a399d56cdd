package journal_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

func TestEntry(t *testing.T) {
	id, res := uuid.New(), uuid.New()
	ctx := journal.WithClient(context.Background(), journal.Client{IP: "10.0.0.1", UserAgent: "cli"})
	e := journal.Entry(ctx, identity.Agent(id), "x.done", "thing", res, map[string]any{"k": 1})
	if e.ActorType != "agent" || e.ActorID == nil || *e.ActorID != id || e.Action != "x.done" || e.ResourceType != "thing" ||
		*e.ResourceID != res || *e.IPAddress != "10.0.0.1" || *e.UserAgent != "cli" {
		t.Fatalf("entry %+v", e)
	}
	var details map[string]int
	if err := json.Unmarshal(e.Details, &details); err != nil || details["k"] != 1 {
		t.Fatalf("details %s", e.Details)
	}
	bare := journal.Entry(context.Background(), identity.Admin, "y", "thing", uuid.Nil, nil)
	if bare.ResourceID != nil || bare.Details != nil || bare.IPAddress != nil || bare.UserAgent != nil {
		t.Fatalf("no resource, details or client must stay null: %+v", bare)
	}
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	j := &journaltest.Journal{}
	ev := event.New("thing.done", nil)
	if err := journal.Record(ctx, j, journal.Entry(ctx, identity.Admin, "a", "t", uuid.Nil, nil), &ev); err != nil {
		t.Fatal(err)
	}
	if err := journal.Record(ctx, j, journal.Entry(ctx, identity.Admin, "b", "t", uuid.Nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	if len(j.Audits()) != 2 || len(j.Events()) != 1 || j.Events()[0].ID != ev.ID {
		t.Fatalf("entries %v events %v", j.Actions(), j.EventTypes())
	}
	// A failed audit write stops before the event.
	broken := &journaltest.Journal{AuditErr: errors.New("down")}
	if err := journal.Record(ctx, broken, journal.Entry(ctx, identity.Admin, "a", "t", uuid.Nil, nil), &ev); err == nil || len(broken.Events()) != 0 {
		t.Fatalf("err %v, events %v", err, broken.EventTypes())
	}
	// What a failed transaction recorded is dropped, as PostgreSQL's rollback does.
	err := j.InTx(ctx, func(ctx context.Context) error {
		_ = journal.Record(ctx, j, journal.Entry(ctx, identity.Admin, "c", "t", uuid.Nil, nil), &ev)
		return errors.New("rolled back")
	})
	if err == nil || len(j.Audits()) != 2 || len(j.Events()) != 1 {
		t.Fatalf("a rolled-back transaction left %v %v", j.Actions(), j.EventTypes())
	}
}
