package redis

import (
	"context"
	"encoding/hex"
	"log/slog"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// api seals and webhook-dispatch opens with the cipher WebhookCipher
// builds, so both must end with the same key.
func TestWebhookCipher(t *testing.T) {
	ctx := context.Background()
	client := redistest.New(t)
	log := slog.New(slog.DiscardHandler)
	tenant := "t" + uuid.NewString()[:8]
	t.Cleanup(func() { client.Del(context.Background(), "brokkr:"+tenant+":webhook-ephemeral-key") })

	key := aesgcm.RandomKey()
	configured, err := WebhookCipher(ctx, secret.String(hex.EncodeToString(key)), client, tenant, log)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := aesgcm.New(key)
	if configured.Fingerprint() != want.Fingerprint() {
		t.Fatal("the configured key was not used")
	}

	api, err := WebhookCipher(ctx, "", client, tenant, log)
	if err != nil {
		t.Fatal(err)
	}
	dispatch, err := WebhookCipher(ctx, "", client, tenant, log)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dispatch.OpenString(api.SealString("https://example.com/hook")); err != nil || got != "https://example.com/hook" {
		t.Fatalf("without a configured key the two processes disagree: %q, %v", got, err)
	}

	if _, err := WebhookCipher(ctx, "not-hex", client, tenant, log); lifecycle.CodeFor(err) != lifecycle.ExitConfig {
		t.Fatalf("malformed key: %v (exit %d), want exit %d", err, lifecycle.CodeFor(err), lifecycle.ExitConfig)
	}
}
