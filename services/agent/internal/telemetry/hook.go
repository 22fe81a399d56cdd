package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
)

// Options tune the telemetry hook.
type Options struct {
	// Logs is log_streaming_enabled, Events kube_events_enabled.
	Logs, Events bool
	// MaxTails is max_log_tails: containers tailed at once.
	MaxTails int
	// Namespace is watch_namespace: "" watches the whole cluster.
	Namespace string
	// OwnerCacheCap is kube_event_uid_cache_cap.
	OwnerCacheCap int
	// EventQueue bounds events waiting for their owner lookup (default
	// 1024).
	EventQueue int

	// Source replaces the cluster's logs (tests: kube-apiserver without a
	// kubelet has none).
	Source LogSource
	// Sender tunes batching and retries.
	Sender SenderOptions
	// Now is the clock; ActiveEvery how often a running session checks
	// that the agent is still ACTIVE (default 1 s); Reopen overrides the
	// tails' first reopen pause (tests).
	Now         func() time.Time
	ActiveEvery time.Duration
	Reopen      time.Duration
}

// FromConfig reads the [agent] settings.
func FromConfig(a config.Agent) Options {
	return Options{Logs: a.LogStreamingEnabled, Events: a.KubeEventsEnabled, MaxTails: a.MaxLogTails,
		Namespace: a.WatchNamespace, OwnerCacheCap: a.KubeEventUIDCacheCap}
}

// Hook returns the telemetry loop for the agent runtime.
func Hook(opts Options) agent.Hook {
	return agent.Hook{Name: "telemetry", Run: func(ctx context.Context, env agent.Env) error {
		cs, err := kubernetes.NewForConfig(env.Kube.Config())
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		return Run(ctx, env, cs, opts)
	}}
}

// Run streams while the agent is ACTIVE, until ctx ends: a session (Pod and
// Event informers, tails, sender) starts when the agent turns ACTIVE and
// stops when it no longer is.
func Run(ctx context.Context, env agent.Env, cs kubernetes.Interface, opts Options) error {
	if !opts.Logs && !opts.Events {
		return nil
	}
	if opts.ActiveEvery <= 0 {
		opts.ActiveEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Source == nil {
		opts.Source = KubeLogs{Client: cs}
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	active := func() bool { return env.Active == nil || env.Active() }
	for ctx.Err() == nil {
		if !active() {
			if env.WaitActive != nil {
				env.WaitActive(ctx, time.Minute)
			} else {
				wait(ctx, opts.ActiveEvery)
			}
			continue
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			session(sctx, env, cs, opts, log)
		}()
		for sctx.Err() == nil && active() {
			wait(sctx, opts.ActiveEvery)
		}
		stop()
		<-done
	}
	return nil
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// session runs the informers, tails and sender until ctx ends.
func session(ctx context.Context, env agent.Env, cs kubernetes.Interface, opts Options, log *slog.Logger) {
	sender := NewSender(env.Broker, env.AgentID, opts.Sender, log)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { sender.Run(ctx) })

	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(opts.Namespace),
		informers.WithTransform(slim))
	var streamer *Streamer
	if opts.Logs {
		streamer = NewStreamer(ctx, opts.Source, sender, env.AgentID, opts.MaxTails, opts.Now, log)
		streamer.reopen = opts.Reopen
		defer streamer.Stop()
		_, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { podChanged(streamer, obj) },
			UpdateFunc: func(_, obj any) { podChanged(streamer, obj) },
			DeleteFunc: func(obj any) { podDeleted(streamer, obj) },
		})
		if err != nil {
			log.Error("log streaming not started", "error", err)
			return
		}
	}
	if opts.Events {
		fwd := NewForwarder(NewMetadataOwners(env.Kube, ownerCap(opts.OwnerCacheCap)), sender, env.AgentID,
			opts.EventQueue, opts.Now, log)
		wg.Go(func() { fwd.Run(ctx) })
		var dropped int
		handle := func(ev *corev1.Event) {
			if !fwd.Handle(ev) {
				dropped++
				if dropped == 1 || dropped%1000 == 0 {
					log.Warn("Kubernetes events dropped: owner lookups are behind", "dropped", dropped)
				}
			}
		}
		_, err := factory.Core().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			// Events already there when the watch starts are history, not
			// news (an agent restart would send them all again).
			AddFunc: func(obj any, initial bool) {
				if ev, ok := obj.(*corev1.Event); ok && !initial {
					handle(ev)
				}
			},
			UpdateFunc: func(old, cur any) {
				o, _ := old.(*corev1.Event)
				if c, ok := cur.(*corev1.Event); ok && repeated(o, c) {
					handle(c)
				}
			},
		})
		if err != nil {
			log.Error("event forwarding not started", "error", err)
			return
		}
	}
	factory.Start(ctx.Done())
	log.Info("telemetry started", "log_streaming", opts.Logs, "kube_events", opts.Events,
		"namespace", nsName(opts.Namespace), "max_log_tails", opts.MaxTails)
	<-ctx.Done()
	factory.Shutdown()
}

func ownerCap(n int) int {
	if n <= 0 {
		return 10000
	}
	return n
}

func nsName(ns string) string {
	if ns == "" {
		return "(all)"
	}
	return ns
}

func podChanged(s *Streamer, obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		s.Update(PodStateOf(p))
	}
}

func podDeleted(s *Streamer, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		s.Remove(p.Namespace, p.Name)
	}
}

// slim keeps what the informers' handlers read, so a cluster-wide watch
// holds little per Pod: metadata without managed fields, container names,
// phase and start time.
func slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, UID: o.UID,
			ResourceVersion: o.ResourceVersion, Annotations: o.Annotations, OwnerReferences: o.OwnerReferences},
			Status: corev1.PodStatus{Phase: o.Status.Phase, StartTime: o.Status.StartTime}}
		for _, c := range o.Spec.Containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name})
		}
		return p, nil
	case *corev1.Event:
		o.ManagedFields = nil
		return o, nil
	}
	return obj, nil
}
