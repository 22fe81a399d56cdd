package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// deployment is one concurrent POST as the client saw it.
type deployment struct {
	stack      string
	id         string
	seq        int64
	createdAt  time.Time
	sent, done time.Time // client clock: request sent, response received
}

// postObject deploys without the test-bound helpers, so it is safe to call
// from many goroutines.
func postObject(client *http.Client, base, pak, stack, yaml string) (deployment, error) {
	body, _ := json.Marshal(map[string]string{"yaml_content": yaml})
	req, err := http.NewRequest("POST", base+v1+"/stacks/"+stack+"/deployment-objects", bytes.NewReader(body))
	if err != nil {
		return deployment{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pak)
	d := deployment{stack: stack, sent: time.Now()}
	resp, err := client.Do(req)
	if err != nil {
		return deployment{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	d.done = time.Now()
	if resp.StatusCode != 201 {
		return deployment{}, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	var out struct {
		ID         string    `json:"id"`
		SequenceID int64     `json:"sequence_id"`
		StackID    string    `json:"stack_id"`
		CreatedAt  time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return deployment{}, err
	}
	if out.StackID != stack {
		return deployment{}, fmt.Errorf("object %s landed in stack %s, want %s", out.ID, out.StackID, stack)
	}
	d.id, d.seq, d.createdAt = out.ID, out.SequenceID, out.CreatedAt
	return d, nil
}

// TestSequenceIDsStrictlyIncreaseUnderConcurrency: many goroutines deploy
// concurrently into several stacks through the API. Every sequence_id is
// unique; whenever one deployment finished before another started (as
// the client saw it), it has the smaller sequence_id and a created_at no
// later; per stack, the list and the target state agree with sequence order
// (docs/compatibility.md#global-sequence).
func TestSequenceIDsStrictlyIncreaseUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	const (
		numStacks  = 4
		numWorkers = 8
		perWorker  = 10
	)
	g := e.CreateGenerator("racer")
	a := e.CreateAgent("watcher", "c")
	stacks := make([]string, numStacks)
	for i := range stacks {
		stacks[i] = e.CreateStack(g.PAK, unique("race"))
		e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stacks[i]})
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: numWorkers}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var (
		mu   sync.Mutex
		all  []deployment
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for w := 0; w < numWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for i := 0; i < perWorker; i++ {
				// Workers walk the stacks from different offsets so every
				// stack sees concurrent inserts.
				st := stacks[(w+i)%numStacks]
				d, err := postObject(client, e.URL, g.PAK, st, cmYAML(fmt.Sprintf("w%d-i%d", w, i)))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					all = append(all, d)
				}
				mu.Unlock()
			}
		}(w)
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d deployments failed, first: %v", len(errs), errs[0])
	}
	if len(all) != numWorkers*perWorker {
		t.Fatalf("%d deployments recorded, want %d", len(all), numWorkers*perWorker)
	}

	// Unique sequence ids and object ids.
	seqs := map[int64]string{}
	objs := map[string]bool{}
	for _, d := range all {
		if prev, dup := seqs[d.seq]; dup {
			t.Fatalf("sequence_id %d given to %s and %s", d.seq, prev, d.id)
		}
		seqs[d.seq] = d.id
		if objs[d.id] {
			t.Fatalf("object id %s returned twice", d.id)
		}
		objs[d.id] = true
		if d.seq <= 0 {
			t.Fatalf("sequence_id %d", d.seq)
		}
	}

	// Causal order: a deployment that completed before another was sent
	// has the smaller sequence_id and no later created_at, in any stack.
	checked := 0
	for _, x := range all {
		for _, y := range all {
			if !x.done.Before(y.sent) {
				continue
			}
			checked++
			if x.seq >= y.seq {
				t.Fatalf("%s (seq %d) finished before %s (seq %d) started", x.id, x.seq, y.id, y.seq)
			}
			if x.createdAt.After(y.createdAt) {
				t.Fatalf("%s finished before %s started but created_at %v > %v", x.id, y.id, x.createdAt, y.createdAt)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no causally ordered pairs: the check did not run")
	}

	// Per stack, the stored order by sequence_id agrees with what was
	// returned, and target state delivers the highest sequence_id.
	byStack := map[string][]deployment{}
	for _, d := range all {
		byStack[d.stack] = append(byStack[d.stack], d)
	}
	latest := map[string]string{}
	for _, st := range stacks {
		mine := byStack[st]
		sort.Slice(mine, func(i, j int) bool { return mine[i].seq > mine[j].seq })
		var listed []object
		e.Must(200, "GET", v1+"/stacks/"+st+"/deployment-objects", g.PAK, nil).JSON(t, &listed)
		if len(listed) != len(mine) {
			t.Fatalf("stack %s lists %d objects, %d were created", st, len(listed), len(mine))
		}
		for i := range listed {
			if listed[i].ID != mine[i].id || listed[i].SequenceID != mine[i].seq {
				t.Fatalf("stack %s position %d: listed %s/%d, want %s/%d", st, i, listed[i].ID, listed[i].SequenceID, mine[i].id, mine[i].seq)
			}
		}
		// Per stack, ordering by creation time never contradicts sequence
		// order for objects whose creations did not overlap.
		for i := 1; i < len(mine); i++ {
			newer, older := mine[i-1], mine[i]
			if older.sent.After(newer.done) {
				t.Fatalf("stack %s: %s (seq %d) was sent after %s (seq %d) completed", st, older.id, older.seq, newer.id, newer.seq)
			}
		}
		latest[st] = mine[0].id
	}
	state := targetState(e, a, "")
	if len(state) != numStacks {
		t.Fatalf("target state has %d objects, want %d", len(state), numStacks)
	}
	for i, o := range state {
		if latest[o.StackID] != o.ID {
			t.Fatalf("target state for stack %s = %s, want the highest sequence_id %s", o.StackID, o.ID, latest[o.StackID])
		}
		if i > 0 && state[i-1].SequenceID >= o.SequenceID {
			t.Fatalf("target state not ascending: %+v", state)
		}
	}
}
