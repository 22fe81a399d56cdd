package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// A canary is the set of flows started right after a fault, timed from the
// moment the fault was injected. The service (or dependency) has recovered
// when every flow went through again: that is the recovery time reported.
//
//	object      admin creates a deployment object (api, PostgreSQL)
//	webhook     its deployment.created reaches the receiver (outbox, Redis signal or sweep, webhook-dispatch)
//	applied     the real agent applied it to the kube-apiserver (target state long-poll, agent)
//	reported    the agent's SUCCESS event reached the receiver as deployment.applied (agent outbox, api, webhook-dispatch)
//	template    a generator renders a template into a new object (templating)
//	new PAK     a new agent's PAK verifies on its first call (auth; not in any cache)
//	work order  an order whose first attempt fails retryably is retried and completed (api, work-order-scheduler's release timer/sweep)
type canaryResult struct {
	steps map[string]time.Duration
	total time.Duration
	last  string
	errs  []string
}

var canarySteps = []string{"object", "webhook", "applied", "reported", "template", "new PAK", "work order"}

func (ld *load) canary(t0 time.Time, n int, within time.Duration, kube *kubernetes.Clientset) canaryResult {
	res := canaryResult{steps: map[string]time.Duration{}}
	var mu sync.Mutex
	done := func(step string) {
		mu.Lock()
		defer mu.Unlock()
		res.steps[step] = time.Since(t0)
	}
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		res.errs = append(res.errs, fmt.Sprintf(format, args...))
	}
	deadline := t0.Add(within)
	// until polls f every 100 ms until it is true or the deadline passes.
	until := func(step string, f func() bool) bool {
		for !f() {
			if time.Now().After(deadline) {
				fail("%s: not done within %v", step, within)
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
		done(step)
		return true
	}
	admin := ld.c.adminPAK
	value := fmt.Sprintf("canary-%d-%s", n, randHex(3))
	var wg sync.WaitGroup
	wg.Add(4)

	go func() { // object → webhook; → applied → reported
		defer wg.Done()
		var id string
		if !until("object", func() bool {
			status, body, err := ld.c.call("POST", "/api/v1/stacks/"+ld.canStack+"/deployment-objects", admin,
				map[string]any{"yaml_content": fmt.Sprintf(canaryCM, ld.canNS, value)})
			ld.l.count("canary object", outcome(status, err))
			id = objectID(status, body, false)
			return id != ""
		}) {
			return
		}
		ld.l.mu.Lock()
		ld.l.objects[id] = time.Now()
		ld.l.mu.Unlock()
		var inner sync.WaitGroup
		inner.Add(1)
		go func() {
			defer inner.Done()
			until("webhook", func() bool { _, ok := ld.rcv.seen("all", "deployment.created", id); return ok })
		}()
		if until("applied", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			cm, err := kube.CoreV1().ConfigMaps(ld.canNS).Get(ctx, "chaos-canary", metav1.GetOptions{})
			return err == nil && cm.Data["canary"] == value
		}) {
			until("reported", func() bool { _, ok := ld.rcv.seen("all", "deployment.applied", id); return ok })
		}
		inner.Wait()
	}()

	go func() { // template
		defer wg.Done()
		until("template", func() bool {
			status, body, err := ld.c.call("POST", "/api/v1/stacks/"+ld.stacks[n%len(ld.stacks)]+"/deployment-objects/from-template", ld.genPAK,
				map[string]any{"template_id": ld.template, "parameters": map[string]any{"name": "canary-" + value, "n": n}})
			ld.l.count("canary template", outcome(status, err))
			if id := objectID(status, body, true); id != "" {
				ld.l.mu.Lock()
				ld.l.objects[id] = time.Now()
				ld.l.mu.Unlock()
				return true
			}
			return false
		})
	}()

	go func() { // new PAK
		defer wg.Done()
		attempt := 0
		var id, pak string
		until("new PAK", func() bool {
			if pak == "" {
				attempt++
				var created struct {
					Agent struct {
						ID string `json:"id"`
					} `json:"agent"`
					InitialPAK string `json:"initial_pak"`
				}
				status, body, err := ld.c.call("POST", "/api/v1/agents", admin,
					map[string]string{"name": fmt.Sprintf("canary-%d-%d", n, attempt), "cluster_name": "canary"})
				ld.l.count("canary new agent", outcome(status, err))
				if status != 201 || json.Unmarshal(body, &created) != nil {
					return false
				}
				id, pak = created.Agent.ID, created.InitialPAK
				ld.c.addSecret(pak)
			}
			status, _, err := ld.c.call("POST", "/api/v1/agents/"+id+"/heartbeat", pak, nil)
			ld.l.count("canary heartbeat", outcome(status, err))
			return status == 200
		})
	}()

	go func() { // work order with one retry
		defer wg.Done()
		var ids []string
		for _, a := range ld.agents {
			ids = append(ids, a.id)
		}
		var id string
		if !until("work order created", func() bool { id = ld.createOrder(retryType, ids, 2); return id != "" }) {
			return
		}
		ld.l.mu.Lock()
		ld.l.orders[id] = time.Now()
		ld.l.mu.Unlock()
		until("work order", func() bool {
			status, _, _ := ld.c.call("GET", "/api/v1/work-order-log/"+id, admin, nil)
			return status == 200
		})
	}()
	wg.Wait()
	delete(res.steps, "work order created")
	for step, d := range res.steps {
		if d > res.total {
			res.total, res.last = d, step
		}
	}
	return res
}
