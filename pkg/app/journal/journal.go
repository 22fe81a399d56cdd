// Package journal is how use cases leave a trace of a mutation: an audit
// entry naming the real caller, and a domain event for the outbox, both
// written in the use case's transaction.
package journal

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Recorder writes audit entries and outbox events in the current transaction.
type Recorder interface {
	Audit(ctx context.Context, e audit.Entry) error
	Emit(ctx context.Context, ev event.Event) error
}

// Transactor runs fn in one transaction carried by ctx.
type Transactor interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Client is the network origin of a request, recorded in audit entries.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// WithClient stores the request's client in ctx (set by the HTTP layer).
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client stored in ctx, if any.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// Entry builds an audit entry for principal p acting on a resource; details
// is marshalled to JSON (nil stays null).
func Entry(ctx context.Context, p identity.Principal, action, resourceType string, resourceID uuid.UUID, details any) audit.Entry {
	e := audit.Entry{
		ActorType:    string(p.Role),
		ActorID:      p.ActorID(),
		Action:       action,
		ResourceType: resourceType,
	}
	if resourceID != uuid.Nil {
		id := resourceID
		e.ResourceID = &id
	}
	if details != nil {
		if b, err := json.Marshal(details); err == nil {
			e.Details = b
		}
	}
	c := ClientFrom(ctx)
	if c.IP != "" {
		ip := c.IP
		e.IPAddress = &ip
	}
	if c.UserAgent != "" {
		ua := c.UserAgent
		e.UserAgent = &ua
	}
	return e
}

// Record writes the audit entry and, when ev is non-nil, the event.
func Record(ctx context.Context, r Recorder, e audit.Entry, ev *event.Event) error {
	if err := r.Audit(ctx, e); err != nil {
		return err
	}
	if ev != nil {
		return r.Emit(ctx, *ev)
	}
	return nil
}
