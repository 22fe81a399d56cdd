package redis

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Frames published by one replica's feed reach the subscribers of the
// stack on another replica's hub, in order; other stacks' messages are
// skipped.
func TestTelemetryFeedAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := redistest.New(t)
	tenant := "test_" + uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := telemetry.NewHub(telemetry.NewService(nil, telemetrytest.AnyStack{}, nil, telemetry.Options{}))
	receiver := NewTelemetryFeed(c, tenant, nil)
	sender := NewTelemetryFeed(c, tenant, nil)
	go receiver.Run(ctx, hub)
	go sender.Run(ctx, nil)
	testsupport.Eventually(t, 5*time.Second, "the receiver to subscribe", receiver.Subscribed)
	st, other := uuid.New(), uuid.New()
	sub, err := hub.Subscribe(ctx, identity.Principal{Role: identity.RoleAdmin}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	frame := func(line string) telemetry.Frame {
		body, _ := json.Marshal(domaintelemetry.PodLogLine{StackID: st, Line: line})
		return telemetry.Frame{Type: domaintelemetry.TypePodLogLine, Body: body}
	}
	sender.Publish(other, []telemetry.Frame{frame("not mine")})
	sender.Publish(st, []telemetry.Frame{frame("one"), frame("two")})
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	for _, want := range []string{"one", "two"} {
		f, err := sub.Next(rctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		var l domaintelemetry.PodLogLine
		if err := json.Unmarshal(f.Body, &l); err != nil || f.Type != domaintelemetry.TypePodLogLine || l.Line != want {
			t.Fatalf("frame %s %s, want line %q", f.Type, f.Body, want)
		}
	}
	if sender.Dropped() != 0 {
		t.Errorf("dropped %d", sender.Dropped())
	}
}
