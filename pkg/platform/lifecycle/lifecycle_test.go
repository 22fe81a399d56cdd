package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func TestSignalContext(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want int
	}{
		{syscall.SIGTERM, ExitSIGTERM},
		{syscall.SIGINT, ExitSIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			ctx, code := SignalContext(context.Background())
			if c := code(); c != ExitOK {
				t.Fatalf("code before any signal = %d", c)
			}
			if err := syscall.Kill(syscall.Getpid(), tt.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("context not cancelled by the signal")
			}
			if c := code(); c != tt.want {
				t.Fatalf("code = %d, want %d", c, tt.want)
			}
		})
	}
}

func TestSignalContextParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, code := SignalContext(parent)
	cancel()
	<-ctx.Done()
	if c := code(); c != ExitOK {
		t.Fatalf("parent cancel reported signal code %d", c)
	}
}

func TestCodeFor(t *testing.T) {
	_, cfgErr := config.Load(config.LoadOptions{Environ: func() []string { return []string{"BROKKR__LOG__LEVEL=loud"} }})
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitFailure},
		{"config error", cfgErr, ExitConfig},
		{"wrapped config error", fmt.Errorf("start: %w", cfgErr), ExitConfig},
		{"unavailable", WithCode(ExitUnavailable, errors.New("broker down")), ExitUnavailable},
		{"pak rejected wrapped", fmt.Errorf("auth: %w", WithCode(ExitNoPermission, errors.New("401"))), ExitNoPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeFor(tt.err); got != tt.want {
				t.Fatalf("CodeFor = %d, want %d", got, tt.want)
			}
		})
	}
	if WithCode(ExitFailure, nil) != nil {
		t.Error("WithCode(nil) must stay nil")
	}
	if got := Exit(ExitSIGTERM, errors.New("drain cut short")); got != ExitSIGTERM {
		t.Errorf("Exit with signal = %d", got)
	}
	if got := Exit(ExitOK, cfgErr); got != ExitConfig {
		t.Errorf("Exit without signal = %d", got)
	}
	if config.ExitCode != ExitConfig {
		t.Errorf("config.ExitCode %d != ExitConfig %d", config.ExitCode, ExitConfig)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("full sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("cancelled sleep: %v after %v; want context.Canceled at once", err, time.Since(start))
	}
}
