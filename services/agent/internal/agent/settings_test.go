package agent

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

func TestSettingsFromEnvironment(t *testing.T) {
	cfg, err := config.Load(config.LoadOptions{Environ: func() []string {
		return []string{
			"BROKKR__AGENT__DRIFT_CHECK_INTERVAL=60", "BROKKR__AGENT__DRIFT_MODE=Report",
			"BROKKR__AGENT__STACK_CONCURRENCY=8", "BROKKR__AGENT__OUTBOX_DIR=/var/spool/brokkr",
			"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS=45", "BROKKR__AGENT__PAK=secret",
			"BROKKR__AGENT__DIAGNOSTICS_LOG_LINES=20", "BROKKR__AGENT__DEPLOYMENT_HEALTH_INTERVAL=15",
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := Settings{Agent: cfg.Agent}
	if s.DriftInterval() != time.Minute || s.DriftModeName() != "report" || s.StackConcurrency != 8 ||
		s.OutboxPath() != "/var/spool/brokkr" || s.TargetStateWait() != 45*time.Second ||
		s.DiagnosticsLogLines != 20 || s.HealthInterval() != 15*time.Second {
		t.Fatalf("settings = %+v", s)
	}

	d := Settings{Agent: config.Defaults().Agent}
	if d.DriftInterval() != 5*time.Minute || d.DriftModeName() != "correct" || d.ShutdownGrace() != 30*time.Second ||
		d.TargetStateWait() != 30*time.Second || d.DiagnosticsInterval() != 10*time.Second ||
		filepath.Base(d.OutboxPath()) != "outbox" || d.OutboxMaxBytes != 64<<20 {
		t.Fatalf("defaults = %+v", d)
	}
	d.OutboxDir = "memory"
	if d.OutboxPath() != "" {
		t.Fatalf("memory outbox path = %q", d.OutboxPath())
	}
	d.DriftEvery = 500 * time.Millisecond
	if d.DriftInterval() != 500*time.Millisecond {
		t.Fatal("DriftEvery does not override drift_check_interval")
	}

	// Bad values are configuration errors (exit 64), reported together.
	_, err = config.Load(config.LoadOptions{Environ: func() []string {
		return []string{"BROKKR__AGENT__DRIFT_MODE=never", "BROKKR__AGENT__STACK_CONCURRENCY=0"}
	}})
	var cerr *config.Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 || lifecycle.CodeFor(err) != lifecycle.ExitConfig {
		t.Fatalf("err = %v", err)
	}
}
