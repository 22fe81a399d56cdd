package workorders

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

func TestClassify(t *testing.T) {
	gr := schema.GroupResource{Group: "batch", Resource: "jobs"}
	noMatch := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "shipwright.io", Kind: "BuildRun"}}
	cases := []struct {
		name      string
		err       error
		reason    Reason
		retryable bool
	}{
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), ReasonTransient, true},
		{"service unavailable", apierrors.NewServiceUnavailable("down"), ReasonTransient, true},
		{"internal error", apierrors.NewInternalError(errors.New("etcd")), ReasonTransient, true},
		{"server timeout", apierrors.NewServerTimeout(gr, "create", 1), ReasonTransient, true},
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ReasonTransient, true},
		{"deadline", fmt.Errorf("applying: %w", context.DeadlineExceeded), ReasonTimeout, true},
		{"forbidden", apierrors.NewForbidden(gr, "x", errors.New("no")), ReasonRejected, false},
		{"not found", apierrors.NewNotFound(gr, "x"), ReasonRejected, false},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Job"}, "x", nil), ReasonRejected, false},
		{"conflict", apierrors.NewConflict(gr, "x", errors.New("changed")), ReasonRejected, false},
		{"bad YAML", &reconcile.InvalidError{Problems: []string{"document 1: missing kind"}}, ReasonInvalid, false},
		{"kind not served", &kube.UnresolvedKindError{Err: noMatch}, ReasonMissingKind, false},
		{"discovery unreachable", &kube.UnresolvedKindError{Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, ReasonTransient, true},
		{"typed failure kept", fmt.Errorf("x: %w", fail(ReasonJobFailed, "Job failed")), ReasonJobFailed, false},
		{"other", errors.New("something odd"), ReasonInternal, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := Classify(c.err)
			if f.Reason != c.reason || f.Retryable() != c.retryable {
				t.Errorf("Classify(%v) = %s (retryable %v), want %s (%v)", c.err, f.Reason, f.Retryable(), c.reason, c.retryable)
			}
		})
	}
}

func TestBuildRunName(t *testing.T) {
	id := uuid.MustParse("1a2b3c4d-0000-4000-8000-000000000000")
	if got := BuildRunName("app", id, 0); got != "app-1a2b3c4d-0" {
		t.Errorf("BuildRunName = %q", got)
	}
	if BuildRunName("app", id, 1) == BuildRunName("app", id, 0) {
		t.Error("a retry must get a new BuildRun name")
	}
	long := BuildRunName(strings.Repeat("very-long-build-name.", 10), id, 12)
	if len(long) > 63 || !strings.HasSuffix(long, "-1a2b3c4d-12") || strings.Contains(long, ".-") || strings.Contains(long, "--") {
		t.Errorf("long name = %q (%d)", long, len(long))
	}
}

func TestStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Durable() {
		t.Fatal("a store with a folder must be durable")
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	a := Claim{Order: workorder.WorkOrder{ID: uuid.New(), WorkType: "build", YAMLContent: "x: 1", RetryCount: 2}, ClaimedAt: t0.Add(time.Second)}
	b := Claim{Order: workorder.WorkOrder{ID: uuid.New(), WorkType: "custom"}, ClaimedAt: t0}
	for _, c := range []Claim{a, b} {
		if err := s.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(uuid.New()); err != nil {
		t.Fatalf("deleting an unknown claim: %v", err)
	}
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, errs := s2.List()
	if len(errs) > 0 || len(got) != 2 {
		t.Fatalf("List = %+v, %v", got, errs)
	}
	if got[0].Order.ID != b.Order.ID || got[1].Order.ID != a.Order.ID {
		t.Error("claims are not listed oldest first")
	}
	if got[1].Order.YAMLContent != "x: 1" || got[1].Order.RetryCount != 2 || !got[1].ClaimedAt.Equal(a.ClaimedAt) {
		t.Errorf("claim not kept intact: %+v", got[1])
	}
	if err := s2.Delete(a.Order.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.List(); len(got) != 1 || got[0].Order.ID != b.Order.ID {
		t.Errorf("after Delete: %+v", got)
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Errorf("truncate cut inside a rune: %q", got)
	}
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate = %q", got)
	}
}
