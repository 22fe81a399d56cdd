// Package lifecycle holds the process exit codes
// (docs/configuration.md#exit-codes) and the
// signal handling that turns SIGINT/SIGTERM into a graceful drain followed
// by the matching exit code.
package lifecycle

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Exit codes, from sysexits.h where one fits, so operators and the
// Kubernetes restart policy can tell a bad config from a broker outage.
const (
	ExitOK           = 0   // clean shutdown
	ExitFailure      = 1   // any other failure
	ExitConfig       = 64  // EX_USAGE: bad configuration
	ExitUnavailable  = 69  // EX_UNAVAILABLE: broker (or a dependency) unreachable at start-up
	ExitNoPermission = 77  // EX_NOPERM: PAK rejected
	ExitSIGINT       = 130 // 128 + SIGINT, after draining
	ExitSIGTERM      = 143 // 128 + SIGTERM, after draining
)

// SignalContext returns a context cancelled on the first SIGINT or SIGTERM,
// and a function reporting the exit code for the signal that arrived
// (ExitSIGINT/ExitSIGTERM), or ExitOK when none has. After the first signal
// the default handling is restored, so a second Ctrl-C kills a drain that
// hangs.
func SignalContext(parent context.Context) (context.Context, func() int) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var code atomic.Int32
	go func() {
		defer signal.Stop(ch)
		select {
		case sig := <-ch:
			code.Store(int32(signalCode(sig)))
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() int { return int(code.Load()) }
}

func signalCode(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return ExitSIGTERM
	}
	return ExitSIGINT
}

// codedError carries an exit code chosen where the failure is understood.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) ExitCode() int { return e.code }

// WithCode marks err with an exit code, e.g.
// lifecycle.WithCode(lifecycle.ExitUnavailable, err) when the broker never
// answered. A nil err stays nil.
func WithCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

// CodeFor maps a run's outcome to an exit code: the code of the first error
// in the chain that has an ExitCode() int method (config errors report
// ExitConfig this way), ExitFailure for any other error, ExitOK for nil.
func CodeFor(err error) int {
	if err == nil {
		return ExitOK
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return ExitFailure
}

// Exit picks the final code: a signal wins over the run's error, because a
// drain cut short by the signal is the expected outcome of being stopped.
func Exit(signalCode int, err error) int {
	if signalCode != ExitOK {
		return signalCode
	}
	return CodeFor(err)
}

// Sleep waits d, or less when ctx ends first (then it returns ctx's
// error): the pause of a retry loop that must stop on shutdown.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
