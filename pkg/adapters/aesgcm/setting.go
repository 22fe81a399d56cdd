package aesgcm

import (
	"context"
	"log/slog"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// FromSetting builds the cipher from broker.webhook_encryption_key. When
// the setting is empty it takes the tenant's ephemeral key from ephemeral
// (shared through Redis so api and webhook-dispatch agree) and logs a loud
// warning; if even that fails it falls back to a key of this process alone.
// Either way, subscriptions stored under an ephemeral key cannot be
// decrypted once that key is gone: docs/webhooks.md explains the
// consequences.
func FromSetting(ctx context.Context, setting secret.String, ephemeral func(context.Context) ([]byte, error), log *slog.Logger) (*Cipher, error) {
	if !setting.IsZero() {
		key, err := ParseKey(setting.Reveal())
		if err != nil {
			return nil, err
		}
		c, err := New(key)
		if err != nil {
			return nil, err
		}
		log.Info("webhook encryption key loaded", "key_fingerprint", c.Fingerprint())
		return c, nil
	}
	key, err := ephemeral(ctx)
	if err != nil {
		c, _ := New(RandomKey())
		log.Error("!!! BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY is not set and no shared ephemeral key could be "+
			"obtained from Redis: using a random key known to this process only. Webhook URLs and auth headers "+
			"it encrypts cannot be read by any other process or after a restart. Set a 64-hex-character key.",
			"key_fingerprint", c.Fingerprint(), "error", err)
		return c, nil
	}
	c, err := New(key)
	if err != nil {
		return nil, err
	}
	log.Warn("!!! BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY is not set: using an ephemeral random key shared through "+
		"Redis. If Redis loses it (a restart without persistence, FLUSHALL), every stored webhook URL, auth header "+
		"and signing secret becomes undecryptable and their deliveries end dead. Development only: set a "+
		"64-hex-character key in production.", "key_fingerprint", c.Fingerprint())
	return c, nil
}
