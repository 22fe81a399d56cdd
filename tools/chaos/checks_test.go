package chaos

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

type kubeClient = *kubernetes.Clientset

// idSet runs query with ids as $1 and returns the ids it answered.
func idSet(ctx context.Context, t *testing.T, db *pgx.Conn, query string, ids []string) map[string]bool {
	t.Helper()
	rows, err := db.Query(ctx, query, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var seqRe = regexp.MustCompile(`seq: "(\d+)"`)

// checkRealAgent waits until the real agent applied the newest stored
// object of its load stack (acknowledged or not) and reported SUCCESS.
func (s *suite) checkRealAgent(ctx context.Context, db *pgx.Conn) {
	t, ld := s.t, s.ld
	var id, yaml string
	if err := db.QueryRow(ctx, `SELECT id::text, yaml_content FROM deployment_objects WHERE stack_id = $1 AND deleted_at IS NULL
		ORDER BY sequence_id DESC LIMIT 1`, ld.loadStack).Scan(&id, &yaml); err != nil {
		t.Errorf("newest object of the real agent's load stack: %v", err)
		return
	}
	m := seqRe.FindStringSubmatch(yaml)
	if m == nil {
		t.Errorf("object %s has no seq: %q", id, yaml)
		return
	}
	want, _ := strconv.Atoi(m[1])
	if want < ld.l.lastLoad {
		t.Errorf("the newest stored load object has seq %d, below the last acknowledged %d", want, ld.l.lastLoad)
	}
	kube, err := s.c.kube.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(s.cfg.bound)
	for {
		cm, err := kube.CoreV1().ConfigMaps(ld.ns).Get(ctx, "chaos-load", metav1.GetOptions{})
		var reported bool
		_ = db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agent_events WHERE agent_id = $1 AND deployment_object_id = $2 AND status = 'SUCCESS')`,
			s.c.realAgentID, id).Scan(&reported)
		if err == nil && cm.Data["seq"] == m[1] && reported {
			return
		}
		if time.Now().After(deadline) {
			got := "<none>"
			if err == nil {
				got = cm.Data["seq"]
			}
			t.Errorf("the real agent did not apply and report the newest load object (seq %s) within %v: cluster has seq %s, reported %v",
				m[1], s.cfg.bound, got, reported)
			s.explainRealAgent()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// explainRealAgent logs what the real agent was given and what went wrong,
// for a failure where the kept log directory cannot be read (CI): the
// broker's explained target state for it, and the start-up line, warnings
// and errors of the agent's and the api's logs (the last 40 of each).
func (s *suite) explainRealAgent() {
	t, c := s.t, s.c
	status, body, err := c.call("GET", "/api/v1/agents/"+c.realAgentID+"/target-state?explain=true", c.adminPAK, nil)
	if len(body) > 4000 {
		body = append(body[:4000:4000], "…"...)
	}
	t.Logf("the real agent's target state (?explain=true): %d %v %s", status, err, body)
	for _, n := range []string{"agent", "api"} {
		data, err := os.ReadFile(c.svc[n].logPath)
		if err != nil {
			t.Logf("%s log: %v", n, err)
			continue
		}
		var keep []string
		for l := range strings.SplitSeq(string(data), "\n") {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"agent started"`) {
				keep = append(keep, l)
			}
		}
		t.Logf("%s log: %d bytes; start-up, warnings and errors (last 40 of %d):\n%s", n, len(data), len(keep),
			strings.Join(keep[max(0, len(keep)-40):], "\n"))
	}
}
