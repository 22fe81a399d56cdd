package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

type ownedStacks map[uuid.UUID]uuid.UUID // stack → owning generator

func (o ownedStacks) Get(_ context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error) {
	g, ok := o[id]
	if !ok {
		return stack.Stack{}, errNotFound
	}
	if !p.IsAdmin() && !(p.Role == identity.RoleGenerator && p.ID == g) {
		return stack.Stack{}, errForbidden
	}
	return stack.Stack{ID: id, GeneratorID: &g}, nil
}

func lineFrame(stackID uuid.UUID, i int) telemetry.Frame {
	body, _ := json.Marshal(domaintelemetry.PodLogLine{StackID: stackID, Line: fmt.Sprint(i)})
	return telemetry.Frame{Type: domaintelemetry.TypePodLogLine, Body: body}
}

// A subscriber that does not read keeps the first LiveBuffer frames; what
// did not fit comes as one buffer_full gap counting it, where the frames
// went missing (after the queued ones, before later ones). Delivery never
// blocks, and other stacks' subscribers are untouched.
func TestHubBufferFull(t *testing.T) {
	ctx := context.Background()
	st, quiet := uuid.New(), uuid.New()
	svc := telemetry.NewService(nil, ownedStacks{st: uuid.New(), quiet: uuid.New()}, nil, telemetry.Options{})
	hub := telemetry.NewHub(svc)
	sub, err := hub.Subscribe(ctx, identity.Admin, st)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := hub.Subscribe(ctx, identity.Admin, quiet)
	const sent = telemetry.LiveBuffer + 500
	for i := range sent {
		hub.Deliver(st, []telemetry.Frame{lineFrame(st, i)})
	}
	for i := range telemetry.LiveBuffer {
		f, err := sub.Next(ctx)
		var l domaintelemetry.PodLogLine
		_ = json.Unmarshal(f.Body, &l)
		if err != nil || f.Type != domaintelemetry.TypePodLogLine || l.Line != fmt.Sprint(i) {
			t.Fatalf("frame %d: %s %s %v", i, f.Type, f.Body, err)
		}
	}
	f, _ := sub.Next(ctx)
	var g domaintelemetry.LogGap
	if err := json.Unmarshal(f.Body, &g); err != nil || f.Type != domaintelemetry.TypeLogGap || g.Reason != domaintelemetry.GapBufferFull ||
		g.DroppedCount != 500 || g.StackID != st || g.SinceTS.IsZero() {
		t.Fatalf("gap %s %s", f.Type, f.Body)
	}
	hub.Deliver(st, []telemetry.Frame{lineFrame(st, -1)})
	if f, _ := sub.Next(ctx); f.Type != domaintelemetry.TypePodLogLine {
		t.Fatalf("after the gap: %s", f.Type)
	}
	if hub.Subscribers() != 2 || !hub.Watching(quiet) {
		t.Fatalf("subscribers %d", hub.Subscribers())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := other.Next(cctx); err == nil {
		t.Fatal("the other stack's subscriber got a frame")
	}
	sub.Close()
	other.Close()
	if hub.Subscribers() != 0 || hub.Watching(st) {
		t.Fatal("subscriptions not closed")
	}
}

// The live tail admits the admin and the owning generator only.
func TestHubSubscribeAccess(t *testing.T) {
	ctx := context.Background()
	st, owner := uuid.New(), uuid.New()
	hub := telemetry.NewHub(telemetry.NewService(nil, ownedStacks{st: owner}, nil, telemetry.Options{}))
	for _, tc := range []struct {
		p   identity.Principal
		err error
	}{
		{identity.Admin, nil},
		{identity.Principal{Role: identity.RoleGenerator, ID: owner}, nil},
		{identity.Principal{Role: identity.RoleGenerator, ID: uuid.New()}, errForbidden},
		{identity.Principal{Role: identity.RoleAgent, ID: uuid.New()}, errForbidden},
	} {
		sub, err := hub.Subscribe(ctx, tc.p, st)
		if err != tc.err {
			t.Errorf("%+v: %v, want %v", tc.p, err, tc.err)
		}
		if sub != nil {
			sub.Close()
		}
	}
	if _, err := hub.Subscribe(ctx, identity.Admin, uuid.New()); err != errNotFound {
		t.Errorf("unknown stack: %v", err)
	}
}
