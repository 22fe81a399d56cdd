package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// Role-matrix rows for the webhook routes (the docs' role table as adapted): the
// subscription API is admin-only; an agent claims its own pending
// deliveries (the admin previews them); only the agent holding a delivery
// reports its result (the original answered 400 to the admin; we answer 403,
// docs/compatibility.md#check-order).

// receiver starts a loopback receiver that answers 200, closed when the
// current (sub)test ends.
func (f *matrixFixture) receiver() string {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.e.T.Cleanup(srv.Close)
	return srv.URL
}

// newWebhook creates a subscription as admin and returns its id.
func (f *matrixFixture) newWebhook(url string, targetLabels []string) string {
	var out struct {
		ID string `json:"id"`
	}
	body := map[string]any{"name": unique("hook"), "url": url, "event_types": []string{"*"}}
	if targetLabels != nil {
		body["target_labels"] = targetLabels
	}
	f.e.Must(201, "POST", v1+"/webhooks", f.e.AdminPAK, body).JSON(f.e.T, &out)
	return out.ID
}

// deadDelivery creates a broker-mode delivery that ran out of attempts and
// returns the retry path of it.
func (f *matrixFixture) deadDelivery() string {
	sub := uuid.MustParse(f.newWebhook("http://127.0.0.1:9/hook", nil))
	id := uuid.New()
	if _, err := postgres.NewDeliveries(f.e.Store).InsertDeliveries(context.Background(), []webhook.Delivery{{ID: id, SubscriptionID: sub,
		EventID: uuid.New(), EventType: "stack.created", Payload: `{}`}}); err != nil {
		f.e.T.Fatal(err)
	}
	f.e.Store.DB().MustExec(`UPDATE webhook_deliveries SET status = 'dead', attempts = 3, completed_at = now(),
		last_error = 'HTTP 500' WHERE id = $1`, id)
	return v1 + "/webhooks/" + sub.String() + "/deliveries/" + id.String() + "/retry"
}

// heldDelivery creates an agent-mode delivery and claims it as agent A.
func (f *matrixFixture) heldDelivery() string {
	sub := uuid.MustParse(f.newWebhook("http://127.0.0.1:9/hook", []string{"matrix-agent"}))
	id := uuid.New()
	if _, err := postgres.NewDeliveries(f.e.Store).InsertDeliveries(context.Background(), []webhook.Delivery{{ID: id, SubscriptionID: sub,
		EventID: uuid.New(), EventType: "stack.created", Payload: `{}`}}); err != nil {
		f.e.T.Fatal(err)
	}
	var claimed []struct {
		ID string `json:"id"`
	}
	f.e.Must(200, "GET", v1+"/agents/"+f.a.ID+"/webhooks/pending", f.a.PAK, nil).JSON(f.e.T, &claimed)
	for _, c := range claimed {
		if c.ID == id.String() {
			return c.ID
		}
	}
	f.e.T.Fatalf("agent A did not claim delivery %s: %+v", id, claimed)
	return ""
}

func webhookRoleRows() []roleRow {
	admin201 := [numWho]int{201, 403, 403, 403, 403}
	hookPath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/webhooks/" + f.newWebhook("https://hooks.example.com/x", nil) + suffix}
		}
	}
	return []roleRow{
		{"GET", "/webhooks", adminOnly, path("/webhooks")},
		{"POST", "/webhooks", admin201, func(*matrixFixture, who) call {
			return call{path: v1 + "/webhooks", body: map[string]any{"name": unique("hook"),
				"url": "https://hooks.example.com/x", "event_types": []string{"stack.*"}}}
		}},
		{"GET", "/webhooks/event-types", adminOnly, path("/webhooks/event-types")},
		{"GET", "/webhooks/:id", adminOnly, hookPath("")},
		{"PUT", "/webhooks/:id", adminOnly, func(f *matrixFixture, w who) call {
			c := hookPath("")(f, w)
			c.body = map[string]any{"enabled": false}
			return c
		}},
		{"DELETE", "/webhooks/:id", adminOnly204, hookPath("")},
		{"GET", "/webhooks/:id/deliveries", adminOnly, hookPath("/deliveries")},
		{"POST", "/webhooks/:id/test", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/webhooks/" + f.newWebhook(f.receiver(), nil) + "/test"}
		}},
		{"POST", "/webhooks/:id/deliveries/:delivery_id/retry", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: f.deadDelivery()}
		}},
		{"GET", "/agents/:id/webhooks/pending", adminOrOwnAgent, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/webhooks/pending"}
		}},
		{"POST", "/webhook-deliveries/:id/result", [numWho]int{403, 200, 403, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/webhook-deliveries/" + f.heldDelivery() + "/result", body: map[string]any{"success": true}}
		}},
	}
}
