package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pingEvery is how long a subscriber waits for a message before it pings
// the server, so a dead connection is noticed even on a quiet channel.
var pingEvery = 5 * time.Second

// listener is what a resilient subscription calls.
type listener struct {
	// up runs after every (re)subscription: messages published while the
	// subscription was down are lost, so callers resynchronise here.
	up func()
	// down runs when an established or attempted subscription fails and a
	// retry follows.
	down func(err error)
	// message runs for every message payload.
	message func(payload string)
}

// listen subscribes to channel until ctx ends or the client is closed,
// resubscribing with exponential backoff (100 ms doubling to 5 s).
func listen(ctx context.Context, client goredis.UniversalClient, channel string, l listener) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := subscribeOnce(ctx, client, channel, func() {
			backoff = 100 * time.Millisecond
			l.up()
		}, l.message)
		if ctx.Err() != nil || errors.Is(err, goredis.ErrClosed) {
			return
		}
		l.down(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// subscribeOnce runs one subscription until it fails. go-redis reconnects a
// subscription by itself; the "subscribe" confirmation that follows every
// (re)connection calls up.
func subscribeOnce(ctx context.Context, client goredis.UniversalClient, channel string, up func(), message func(string)) error {
	ps := client.Subscribe(ctx, channel)
	defer ps.Close()
	// A blocked read does not watch ctx; closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	pingPending := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() && !pingPending {
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				pingPending = true
				continue
			}
			return err
		}
		pingPending = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				up()
			}
		case *goredis.Message:
			message(m.Payload)
		}
	}
}
