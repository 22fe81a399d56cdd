package redis

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// Options turns the redis section into go-redis's options for every
// topology (docs/configuration.md, docs/install.md#redis):
//
//   - redis.url alone: one server;
//   - redis.sentinel_master + redis.sentinel_addrs: the primary the
//     sentinels name, followed across failovers;
//   - redis.cluster_addrs: a Redis Cluster.
//
// redis.url always supplies the data nodes' credentials, database, TLS and
// timeouts; with Sentinel or Cluster its host is not contacted. Every
// Redis client and asynq connection of every service is built from these
// options, so the services cannot disagree on where Redis is.
func Options(cfg config.Redis) (*goredis.UniversalOptions, error) {
	o, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	u := &goredis.UniversalOptions{
		Addrs:           []string{o.Addr},
		ClientName:      o.ClientName,
		DB:              o.DB,
		Protocol:        o.Protocol,
		Username:        o.Username,
		Password:        o.Password,
		MaxRetries:      o.MaxRetries,
		MinRetryBackoff: o.MinRetryBackoff,
		MaxRetryBackoff: o.MaxRetryBackoff,
		DialTimeout:     o.DialTimeout,
		ReadTimeout:     o.ReadTimeout,
		WriteTimeout:    o.WriteTimeout,
		PoolFIFO:        o.PoolFIFO,
		PoolSize:        o.PoolSize,
		PoolTimeout:     o.PoolTimeout,
		MinIdleConns:    o.MinIdleConns,
		MaxIdleConns:    o.MaxIdleConns,
		MaxActiveConns:  o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime,
		ConnMaxLifetime: o.ConnMaxLifetime,
		TLSConfig:       o.TLSConfig,
	}
	switch {
	case cfg.SentinelMaster != "":
		if o.Network == "unix" {
			return nil, fmt.Errorf("redis.url: a unix socket cannot be combined with redis.sentinel_master")
		}
		u.MasterName = cfg.SentinelMaster
		u.Addrs = append([]string(nil), cfg.SentinelAddrs...)
		u.SentinelPassword = cfg.SentinelPassword.Reveal()
	case len(cfg.ClusterAddrs) > 0:
		if o.Network == "unix" {
			return nil, fmt.Errorf("redis.url: a unix socket cannot be combined with redis.cluster_addrs")
		}
		if o.DB != 0 {
			return nil, fmt.Errorf("redis.url: Redis Cluster has only database 0, got %d", o.DB)
		}
		u.Addrs = append([]string(nil), cfg.ClusterAddrs...)
		u.IsClusterMode = true // a cluster even when one seed node is given
	case o.Network == "unix":
		// UniversalOptions has no network field: dial the socket path.
		u.Dialer = func(ctx context.Context, _, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: u.DialTimeout}
			return d.DialContext(ctx, "unix", addr)
		}
	}
	return u, nil
}

// NewClient opens the client cfg describes: a plain, failover (Sentinel)
// or cluster client behind one interface.
func NewClient(cfg config.Redis) (goredis.UniversalClient, error) {
	u, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	return goredis.NewUniversalClient(u), nil
}

// slogLogger sends go-redis's own messages (a sentinel naming a new
// primary, a pool failing to dial) to the service's structured log instead
// of bare lines on stderr.
type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelInfo, fmt.Sprintf(format, v...), "component", "go-redis")
}

var setLogger sync.Once

// NewConfiguredClient is the Redis client a service's configuration
// describes, for the services' Wire graphs. A malformed redis section is
// exit code 64; the cleanup closes the client.
func NewConfiguredClient(cfg config.Settings) (goredis.UniversalClient, func(), error) {
	setLogger.Do(func() { goredis.SetLogger(slogLogger{}) })
	c, err := NewClient(cfg.Redis)
	if err != nil {
		return nil, nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	return c, func() { _ = c.Close() }, nil
}
