package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

func TestSplitEnv(t *testing.T) {
	x, rest, err := SplitEnv([]string{
		"BROKKR__AGENT__DRIFT_CHECK_INTERVAL=60", "BROKKR__AGENT__DRIFT_MODE=Report",
		"BROKKR__AGENT__STACK_CONCURRENCY=8", "BROKKR__AGENT__OUTBOX_DIR=/var/spool/brokkr",
		"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS=600", "BROKKR__AGENT__PAK=secret", "PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if x.DriftCheckInterval != time.Minute || x.DriftMode != "report" || x.StackConcurrency != 8 ||
		x.OutboxDir != "/var/spool/brokkr" || x.TargetStateWait != 60*time.Second {
		t.Fatalf("extra = %+v", x)
	}
	if len(rest) != 2 || rest[0] != "BROKKR__AGENT__PAK=secret" {
		t.Fatalf("rest = %v", rest)
	}
	// What is left loads with the shared config (it rejects unknown keys).
	if _, err := config.Load(config.LoadOptions{Environ: func() []string { return rest }}); err != nil {
		t.Fatal(err)
	}

	_, _, err = SplitEnv([]string{"BROKKR__AGENT__DRIFT_MODE=never", "BROKKR__AGENT__STACK_CONCURRENCY=0"})
	var cerr *config.Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 || lifecycle.CodeFor(err) != lifecycle.ExitConfig {
		t.Fatalf("err = %v", err)
	}
}
