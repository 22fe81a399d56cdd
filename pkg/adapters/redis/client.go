package redis

import (
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// NewConfiguredClient is the Redis client a service's configuration
// describes, for the services' Wire graphs. A malformed redis.url is exit
// code 64; the cleanup closes the client.
func NewConfiguredClient(cfg config.Settings) (*goredis.Client, func(), error) {
	opt, err := goredis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, nil, lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("redis.url: %w", err))
	}
	c := goredis.NewClient(opt)
	return c, func() { _ = c.Close() }, nil
}
