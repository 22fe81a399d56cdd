package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks/webhookstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// prefixCipher "seals" by prefixing; Open refuses anything else, as
// AES-GCM refuses a blob sealed under another key.
type prefixCipher struct{}

func (prefixCipher) Seal(p []byte) []byte { return append([]byte("sealed:"), p...) }
func (prefixCipher) Open(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte("sealed:")) {
		return nil, errors.New("cannot open")
	}
	return b[len("sealed:"):], nil
}

// guardSender refuses link-local targets, as the SSRF guard does, and
// answers every send with result.
type guardSender struct {
	result webhook.Result
	sent   int
}

func (g *guardSender) Send(context.Context, webhook.Request) webhook.Result {
	g.sent++
	return g.result
}
func (g *guardSender) CheckTarget(raw string) error {
	if strings.Contains(raw, "169.254.") {
		return domain.Unprocessable("URL targets a blocked address")
	}
	return nil
}

type fixture struct {
	svc     *webhooks.Service
	mem     *webhookstest.Memory
	journal *journaltest.Journal
	sender  *guardSender
}

func newFixture() fixture {
	m := webhookstest.NewMemory()
	j := &journaltest.Journal{}
	s := &guardSender{result: webhook.Result{StatusCode: 204}}
	svc := webhooks.NewService(webhooks.Repos{Tx: j, Journal: j, Subscriptions: m, Deliveries: m, AgentDeliveries: m},
		prefixCipher{}, s, nil)
	return fixture{svc: svc, mem: m, journal: j, sender: s}
}

func ptr[T any](v T) *T { return &v }

func validInput() webhooks.CreateInput {
	return webhooks.CreateInput{Name: "hook", URL: "https://example.com/h", EventTypes: []string{"stack.created"}}
}

func TestCreateRules(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		caller identity.Principal
		mod    func(*webhooks.CreateInput)
		want   error
		msg    string
	}{
		{"admin", identity.Admin, nil, nil, ""},
		{"agent", identity.Agent(uuid.New()), nil, domain.ErrForbidden, ""},
		{"generator", identity.Generator(uuid.New()), nil, domain.ErrForbidden, ""},
		{"empty name", identity.Admin, func(in *webhooks.CreateInput) { in.Name = " " }, domain.ErrInvalid, "Name cannot be empty"},
		{"not http", identity.Admin, func(in *webhooks.CreateInput) { in.URL = "ftp://x" }, domain.ErrInvalid, "http"},
		{"no event types", identity.Admin, func(in *webhooks.CreateInput) { in.EventTypes = nil }, domain.ErrInvalid, ""},
		{"retries over 100", identity.Admin, func(in *webhooks.CreateInput) { in.MaxRetries = ptr(101) }, domain.ErrInvalid, ""},
		{"blocked target in broker mode", identity.Admin, func(in *webhooks.CreateInput) { in.URL = "http://169.254.169.254/" },
			domain.ErrUnprocessable, "blocked"},
		{"blocked target is the agent's business in agent mode", identity.Admin, func(in *webhooks.CreateInput) {
			in.URL, in.TargetLabels = "http://169.254.169.254/", []string{"env:prod"}
		}, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture()
			in := validInput()
			if c.mod != nil {
				c.mod(&in)
			}
			sub, err := f.svc.Create(ctx, c.caller, in)
			if c.want != nil {
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v, want %v %q", err, c.want, c.msg)
				}
				if l, _ := f.mem.ListSubscriptions(ctx); len(l) != 0 || len(f.journal.Audits()) != 0 {
					t.Fatal("a refused subscription was stored or audited")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := f.mem.GetSubscription(ctx, sub.ID)
			if string(stored.URLEncrypted) != "sealed:"+in.URL || stored.MaxRetries != webhook.DefaultMaxRetries || !stored.Enabled {
				t.Fatalf("stored %+v", stored)
			}
			if got := f.journal.Actions(); !slices.Equal(got, []string{webhook.ActionCreated}) {
				t.Fatalf("audit %v", got)
			}
		})
	}
}

func TestCreateValidateSendsFirst(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	in := validInput()
	in.Validate = true
	f.sender.result = webhook.Result{StatusCode: 500, Body: []byte("no")}
	if _, err := f.svc.Create(ctx, identity.Admin, in); !errors.Is(err, domain.ErrInvalid) || f.sender.sent != 1 {
		t.Fatalf("a failed validation delivery refuses: %v (sent %d)", err, f.sender.sent)
	}
	f.sender.result = webhook.Result{StatusCode: 200}
	if _, err := f.svc.Create(ctx, identity.Admin, in); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateDeleteAndDeliveries(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	in := validInput()
	in.AuthHeader = ptr("Bearer x")
	sub, err := f.svc.Create(ctx, identity.Admin, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.Update(ctx, identity.Admin, sub.ID, webhooks.UpdateInput{Name: ptr("renamed"),
		AuthHeader: webhooks.Nullable[string]{Set: true}})
	if err != nil || out.Name != "renamed" || out.HasAuthHeader {
		t.Fatalf("update %+v %v", out, err)
	}
	if _, err := f.svc.Update(ctx, identity.Admin, uuid.New(), webhooks.UpdateInput{Name: ptr("x")}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := f.svc.Update(ctx, identity.Admin, sub.ID, webhooks.UpdateInput{TimeoutSeconds: ptr(0)}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("timeout 0: %v", err)
	}

	ids, _ := f.mem.InsertDeliveries(ctx, []webhook.Delivery{{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(),
		EventType: "stack.created", Payload: "{}"}})
	if _, err := f.svc.Deliveries(ctx, identity.Admin, webhooks.DeliveryQuery{SubscriptionID: uuid.New()}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deliveries of an unknown subscription: %v", err)
	}
	if _, err := f.svc.Deliveries(ctx, identity.Admin, webhooks.DeliveryQuery{SubscriptionID: sub.ID, Limit: -1}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("negative limit: %v", err)
	}
	if ds, err := f.svc.Deliveries(ctx, identity.Admin, webhooks.DeliveryQuery{SubscriptionID: sub.ID, Status: "bogus"}); err != nil || ds == nil || len(ds) != 0 {
		t.Fatalf("an unknown status lists nothing: %v %v", ds, err)
	}
	if ds, err := f.svc.Deliveries(ctx, identity.Admin, webhooks.DeliveryQuery{SubscriptionID: sub.ID}); err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v %v", ds, err)
	}
	if _, err := f.svc.RetryDelivery(ctx, identity.Admin, sub.ID, ids[0]); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("retrying a pending delivery: %v", err)
	}
	f.mem.SetDelivery(t, ids[0], webhook.StatusDead, 6, nil)
	if d, err := f.svc.RetryDelivery(ctx, identity.Admin, sub.ID, ids[0]); err != nil || d.Status != webhook.StatusPending {
		t.Fatalf("retry %+v %v", d, err)
	}
	if err := f.svc.Delete(ctx, identity.Agent(uuid.New()), sub.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent delete: %v", err)
	}
	if err := f.svc.Delete(ctx, identity.Admin, sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, identity.Admin, sub.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	want := []string{webhook.ActionCreated, webhook.ActionUpdated, webhook.ActionDeliveryRetried, webhook.ActionDeleted}
	if got := f.journal.Actions(); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
}

func TestAgentPending(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	in := validInput()
	in.TargetLabels, in.SigningSecret = []string{"env:prod"}, ptr("k-0123456789abcdef0123456789abcdef")
	sub, err := f.svc.Create(ctx, identity.Admin, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.mem.InsertDeliveries(ctx, []webhook.Delivery{{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(),
		EventType: "stack.created", Payload: "{}"}}); err != nil {
		t.Fatal(err)
	}
	agentID := f.mem.Agent(t, agent.StatusActive, "env:prod")
	inactive := f.mem.Agent(t, agent.StatusInactive, "env:prod")
	if got, err := f.svc.Pending(ctx, identity.Agent(inactive), inactive); err != nil || len(got) != 0 {
		t.Fatalf("an inactive agent gets nothing: %v %v", got, err)
	}
	if _, err := f.svc.Pending(ctx, identity.Agent(inactive), agentID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another agent's pending: %v", err)
	}
	preview, err := f.svc.Pending(ctx, identity.Admin, agentID)
	if err != nil || len(preview) != 1 || preview[0].URL != nil || preview[0].SigningSecret != nil {
		t.Fatalf("the admin's preview claims nothing and shows no secret: %+v %v", preview, err)
	}
	got, err := f.svc.Pending(ctx, identity.Agent(agentID), agentID)
	if err != nil || len(got) != 1 || got[0].URL == nil || *got[0].URL != in.URL || got[0].SigningSecret == nil {
		t.Fatalf("claim %+v %v", got, err)
	}
	if again, _ := f.svc.Pending(ctx, identity.Agent(agentID), agentID); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
}

func TestAgentPendingEndsUndecryptable(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	sub := webhook.Subscription{Name: "old-key", URLEncrypted: []byte("other-key:https://x"), EventTypes: []string{"*"},
		TargetLabels: []string{"l"}, Enabled: true, MaxRetries: 1, TimeoutSeconds: 5}
	if err := f.mem.CreateSubscription(ctx, &sub); err != nil {
		t.Fatal(err)
	}
	ids, _ := f.mem.InsertDeliveries(ctx, []webhook.Delivery{{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(),
		EventType: "stack.created", Payload: "{}"}})
	a := f.mem.Agent(t, agent.StatusActive, "l")
	if got, err := f.svc.Pending(ctx, identity.Agent(a), a); err != nil || len(got) != 0 {
		t.Fatalf("an undecryptable delivery is not handed out: %+v %v", got, err)
	}
	d, _ := f.mem.LockDelivery(ctx, ids[0])
	if d.Status != webhook.StatusDead || d.LastError == nil || !strings.Contains(*d.LastError, "cannot be decrypted") {
		t.Fatalf("delivery %+v", d)
	}
	if got := f.journal.Actions(); !slices.Equal(got, []string{webhook.ActionDeliveryFailed}) {
		t.Fatalf("audit %v", got)
	}
}
