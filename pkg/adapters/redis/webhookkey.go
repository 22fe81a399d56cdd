package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// EphemeralWebhookKey returns the tenant's development webhook key, shared
// through Redis by every process of the tenant (api encrypts, and
// webhook-dispatch decrypts, so a key per process would not work). The
// first caller creates it (SET NX); it lives as long as Redis keeps it.
// It exists only for setups without broker.webhook_encryption_key, which
// are warned about loudly at start-up: production must configure a key.
func EphemeralWebhookKey(ctx context.Context, client goredis.UniversalClient, tenant string) ([]byte, error) {
	if tenant == "" {
		tenant = "public"
	}
	name := "brokkr:" + tenant + ":webhook-ephemeral-key"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	candidate := make([]byte, 32)
	if _, err := rand.Read(candidate); err != nil {
		return nil, err
	}
	if err := client.SetNX(ctx, name, hex.EncodeToString(candidate), 0).Err(); err != nil {
		return nil, err
	}
	v, err := client.Get(ctx, name).Result()
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, errors.New("redis: the shared ephemeral webhook key is malformed")
	}
	return key, nil
}

// WebhookCipher is the cipher of webhook secrets that api (sealing) and
// webhook-dispatch (opening) build alike: broker.webhook_encryption_key, or
// else the tenant's ephemeral key shared here (aesgcm.FromSetting explains
// the fallbacks and warnings). A malformed key exits 64.
func WebhookCipher(ctx context.Context, setting secret.String, client goredis.UniversalClient, tenant string, log *slog.Logger) (*aesgcm.Cipher, error) {
	c, err := aesgcm.FromSetting(ctx, setting, func(ctx context.Context) ([]byte, error) {
		return EphemeralWebhookKey(ctx, client, tenant)
	}, log)
	if err != nil {
		return nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	return c, nil
}
