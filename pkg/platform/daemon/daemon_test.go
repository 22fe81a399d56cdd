package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

func environ() []string {
	return []string{"BROKKR__LOG__FORMAT=json", "BROKKR_CONFIG_WATCHER_ENABLED=false"}
}

type graph struct{ name string }

func TestRun(t *testing.T) {
	unavailable := lifecycle.WithCode(lifecycle.ExitUnavailable, errors.New("database down"))
	for _, tc := range []struct {
		name       string
		args       []string
		buildErr   error
		serveErr   error
		want       int
		served     bool
		cleanedUp  bool
		wantStderr string
	}{
		{name: "help", args: []string{"-h"}, want: lifecycle.ExitOK},
		{name: "bad argument", args: []string{"frobnicate"}, want: lifecycle.ExitConfig, wantStderr: "unexpected argument"},
		{name: "start-up failure keeps its code", buildErr: unavailable, want: lifecycle.ExitUnavailable, wantStderr: "start-up failed"},
		{name: "clean stop", want: lifecycle.ExitOK, served: true, cleanedUp: true, wantStderr: "worker stopped"},
		{name: "serve error", serveErr: unavailable, want: lifecycle.ExitUnavailable, served: true, cleanedUp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			served, cleanedUp := false, false
			build := func(ctx context.Context, cfg config.Settings, live *config.Store, log *slog.Logger) (*graph, func(), error) {
				if tc.buildErr != nil {
					return nil, nil, tc.buildErr
				}
				return &graph{name: "g"}, func() { cleanedUp = true }, nil
			}
			serve := func(p *Process, g *graph) error {
				served = g != nil && g.name == "g" && p.Live != nil && p.Ctx != nil
				return tc.serveErr
			}
			got := Run(context.Background(), "worker", tc.args, environ, &stdout, &stderr, build, serve)
			if got != tc.want || served != tc.served || cleanedUp != tc.cleanedUp {
				t.Fatalf("code %d served %v cleanup %v; want %d %v %v\nstderr: %s", got, served, cleanedUp, tc.want, tc.served, tc.cleanedUp, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}

type runner struct{ err error }

func (r *runner) Ping() error { return r.err }

func TestRedisReachable(t *testing.T) {
	up := &runner{}
	if w, err := RedisReachable(up, nil); w != up || err != nil {
		t.Fatalf("reachable: %v, %v", w, err)
	}
	built := errors.New("bad options")
	if _, err := RedisReachable(up, built); err != built {
		t.Fatalf("build error = %v, want it as is", err)
	}
	w, err := RedisReachable(&runner{err: errors.New("connection refused")}, nil)
	if w != nil || lifecycle.CodeFor(err) != lifecycle.ExitUnavailable || !strings.Contains(err.Error(), "redis: connection refused") {
		t.Fatalf("unreachable: %v, %v (exit %d)", w, err, lifecycle.CodeFor(err))
	}
}
