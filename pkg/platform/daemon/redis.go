package daemon

import (
	"fmt"

	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// RedisReachable returns w, a worker's queue runner, once its Redis answers
// w.Ping: a worker whose Redis is unreachable at start-up exits 69 like one
// whose database is (docs/configuration.md#exit-codes). err, the error of
// building w, is returned as is, so a provider can end with
// `return daemon.RedisReachable(newRunner(...))`.
func RedisReachable[W interface{ Ping() error }](w W, err error) (W, error) {
	if err != nil {
		return w, err
	}
	if err := w.Ping(); err != nil {
		var none W
		return none, lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("redis: %w", err))
	}
	return w, nil
}
