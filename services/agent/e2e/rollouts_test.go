package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

// runScheduler advances rollouts in this process every 300 ms, as a
// work-order-scheduler replica does, on the broker's database, and
// publishes its change notifications to the broker's api replicas.
func runScheduler(t *testing.T, b brokerEnv) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := postgres.Open(ctx, postgres.Options{URL: b.dbURL, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := goredis.ParseURL(b.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	store := postgres.NewStore(db)
	changes := redisadapter.NewChanges(rdb, "", nil, nil)
	svc := rollouts.NewService(postgres.RolloutRepos(store), stacks.NewService(postgres.StackRepos(store), changes), changes)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := svc.AdvanceAll(ctx); err != nil && ctx.Err() == nil {
					t.Logf("advance: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = rdb.Close()
		_ = db.Close()
	})
}

// TestCanaryFailsHealthThenRollback: two real agents on the local
// kube-apiserver share a stack rolled out in waves, the first agent alone
// in the canary wave. The canary's Pods of the new object fail, so its
// deployment health turns failing and the rollout halts: the second agent
// never receives the object (no event, not in its target state). A
// rollback restores the old YAML on the canary.
func TestCanaryFailsHealthThenRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	runScheduler(t, b)
	env := testenv.ForTest(t)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ucfg := agentUserConfig(t, env)

	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "rollout-" + uuid.NewString()[:6]}, &st)
	canary := startAgent(t, b, ucfg, "rollout-canary", st.ID)
	second := startAgent(t, b, ucfg, "rollout-second", st.ID)
	b.call(t, http.MethodPost, "/agents/"+canary.id.String()+"/labels", "canary", nil)
	ns := "rollout-" + uuid.NewString()[:8]
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	type object struct {
		ID         uuid.UUID `json:"id"`
		SequenceID int64     `json:"sequence_id"`
	}
	var v1 object
	b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects",
		map[string]any{"yaml_content": fmt.Sprintf(quickStart, ns, "v1", 1)}, &v1)
	appliedBy := func(agentID, objectID uuid.UUID) bool {
		var events []struct {
			DeploymentObjectID uuid.UUID `json:"deployment_object_id"`
			Status             string    `json:"status"`
		}
		b.call(t, http.MethodGet, "/agents/"+agentID.String()+"/events", nil, &events)
		return slices.ContainsFunc(events, func(e struct {
			DeploymentObjectID uuid.UUID `json:"deployment_object_id"`
			Status             string    `json:"status"`
		}) bool {
			return e.DeploymentObjectID == objectID && e.Status == "SUCCESS"
		})
	}
	eventually(t, 90*time.Second, func() string {
		if appliedBy(canary.id, v1.ID) && appliedBy(second.id, v1.ID) {
			return ""
		}
		return "v1 was not applied by both agents"
	})

	b.call(t, http.MethodPut, "/stacks/"+st.ID.String()+"/rollout-policy", map[string]any{
		"strategy": "waves", "max_unavailable": 1, "min_healthy_seconds": 600, "progress_deadline_seconds": 900,
		"on_failure": "halt", "waves": []map[string]any{{"name": "canary", "selector": map[string]any{"labels": []string{"canary"}}}}}, nil)
	var v2 object
	b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects",
		map[string]any{"yaml_content": fmt.Sprintf(quickStart, ns, "v2", 1)}, &v2)

	// The canary applies v2 (a new ConfigMap message); the Deployment's Pod
	// then fails before the canary has been healthy for
	// min_healthy_seconds, so the next wave never starts.
	eventually(t, 90*time.Second, func() string {
		if appliedBy(canary.id, v2.ID) {
			return ""
		}
		return "the canary did not apply v2"
	})
	eventually(t, 60*time.Second, func() string {
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) == 0 {
			return fmt.Sprintf("no pods yet: %v", err)
		}
		return ""
	})
	setPodStatus(t, cs, ns, "app=web", func(p *corev1.Pod) bool {
		p.Status.Phase = corev1.PodFailed
		return true
	})
	var status struct {
		State  string  `json:"state"`
		Reason *string `json:"reason"`
	}
	eventually(t, 90*time.Second, func() string {
		b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/rollout", nil, &status)
		if status.State == "halted" {
			return ""
		}
		return fmt.Sprintf("the rollout did not halt: %+v", status)
	})

	// The second cluster never received v2.
	if appliedBy(second.id, v2.ID) {
		t.Fatal("the agent outside the canary wave applied the halted object")
	}
	var ts []object
	b.call(t, http.MethodGet, "/agents/"+second.id.String()+"/target-state?mode=full", nil, &ts)
	if slices.ContainsFunc(ts, func(o object) bool { return o.ID == v2.ID }) {
		t.Fatalf("the second agent's target state holds the halted object: %+v", ts)
	}

	// Rollback restores v1's YAML on the canary.
	var rb object
	b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/rollback", map[string]any{"to_sequence_id": v1.SequenceID}, &rb)
	eventually(t, 90*time.Second, func() string {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "app-config", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if cm.Data["message"] == "v1" && appliedBy(canary.id, rb.ID) {
			return ""
		}
		return fmt.Sprintf("the canary was not restored: message %q", cm.Data["message"])
	})
}
