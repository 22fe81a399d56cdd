// Package loadgen is a fleet simulator: N agents speaking the broker's real
// protocol (heartbeat, target state with ETag and ?wait= long-poll, events,
// health) against api replicas on loopback, with deployment changes, label
// churn and agent restarts, plus a bare net/http baseline measured in the
// same run. It reports req/s and latency per route, propagation latency
// (object committed → each agent's response carries it), responses by
// status, and CPU/RSS of the processes from /proc.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
)

// Config describes one simulation.
type Config struct {
	// URLs are the api replicas; agents are spread round-robin. Loopback only.
	URLs     []string
	AdminPAK string
	// Agents is the fleet size.
	Agents int
	// PollInterval > 0: agents poll every interval with If-None-Match;
	// 0: agents long-poll with ?wait=Wait.
	PollInterval time.Duration
	Wait         time.Duration
	// Duration of the fleet phase (the run stops by itself).
	Duration time.Duration
	// ChangeEvery deploys a new object to the fleet's stack this often
	// (0: no changes); each one's propagation is measured.
	ChangeEvery time.Duration
	// LabelChurn is label add/remove operations per second on a stack no
	// agent is associated with (they must wake nobody).
	LabelChurn float64
	// Restarts is agents per second that restart (forget their ETag and
	// connection) during the fleet phase.
	Restarts float64
	// Heartbeat is each agent's heartbeat interval (0: none).
	Heartbeat time.Duration
	// Ack makes agents report SUCCESS (and healthy) for each new object
	// after a random delay up to AckDelay, as a real agent does.
	Ack      bool
	AckDelay time.Duration
	// Throughput > 0 runs the closed-loop phase (Clients clients, for this
	// long per case) on the 304 and 200 paths and on a bare net/http
	// server in the same run.
	Throughput time.Duration
	Clients    int
	// Setup concurrency for creating agents.
	SetupWorkers int
	// PIDs of processes whose CPU/RSS to report (name → pid); DBName adds
	// the PostgreSQL backends serving that database.
	PIDs   map[string]int
	DBURL  string
	DBName string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// CheckLoopback refuses any URL whose host is not a loopback address: the
// simulator must never load anything but the local machine.
func CheckLoopback(urls []string) error {
	if len(urls) == 0 {
		return errors.New("no api URL")
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("%q is not an http(s) URL", raw)
		}
		host := u.Hostname()
		if host == "localhost" {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1): refusing to load it", raw)
		}
	}
	return nil
}

type simAgent struct {
	id, pak string
	base    string
	mu      sync.Mutex
	etag    string
	seen    map[string]bool
	restart atomic.Bool
}

// Runner holds a simulation's state.
type Runner struct {
	cfg     Config
	client  *http.Client
	stats   *Stats
	agents  []*simAgent
	stackID string
	churnID string

	chMu      sync.Mutex
	changes   map[string]*change // object id → change
	order     []*change
	sightings map[string][]time.Time
}

type change struct {
	id   string
	sent time.Time
}

// New prepares a run.
func New(cfg Config) (*Runner, error) {
	if err := CheckLoopback(cfg.URLs); err != nil {
		return nil, err
	}
	if cfg.Agents <= 0 {
		return nil, errors.New("agents must be positive")
	}
	defaults.Set(&cfg.Wait, 30*time.Second)
	defaults.Set(&cfg.Clients, 64)
	defaults.Set(&cfg.SetupWorkers, 16)
	defaults.Set(&cfg.AckDelay, 500*time.Millisecond)
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	tr := &http.Transport{MaxIdleConns: 0, MaxIdleConnsPerHost: cfg.Agents + cfg.Clients + 64,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext}
	return &Runner{cfg: cfg, client: &http.Client{Transport: tr}, stats: NewStats(), changes: map[string]*change{}, sightings: map[string][]time.Time{}}, nil
}

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "[loadgen %s] "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// do sends one request, records it under route and returns status and body.
// A 503 is retried after Retry-After (plus jitter), as the agent does; the
// 503 is still counted.
func (r *Runner) do(ctx context.Context, route, method, url, pak string, body []byte, hdr map[string]string) (int, []byte, http.Header, error) {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return 0, nil, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+pak)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := r.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				r.stats.Record(route, 0, time.Since(start))
			}
			return 0, nil, nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			if ctx.Err() == nil {
				r.stats.Record(route, 0, time.Since(start))
			}
			return 0, nil, nil, err
		}
		r.stats.Record(route, resp.StatusCode, time.Since(start))
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 5 {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			wait := time.Duration(max(secs, 1)) * time.Second
			wait += time.Duration(rand.Int64N(int64(wait / 2)))
			select {
			case <-ctx.Done():
				return resp.StatusCode, data, resp.Header, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		return resp.StatusCode, data, resp.Header, nil
	}
}

func (r *Runner) admin(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	status, data, _, err := r.do(ctx, "admin", method, r.cfg.URLs[0]+path, r.cfg.AdminPAK, b, nil)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: %d: %s", method, path, status, data)
	}
	return data, nil
}

// Setup creates the fleet's stack (label "loadgen-fleet"), an unrelated
// churn stack and the agents, each labelled into the fleet.
func (r *Runner) Setup(ctx context.Context) error {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	var st struct {
		ID string `json:"id"`
	}
	data, err := r.admin(ctx, "POST", "/api/v1/stacks", map[string]any{"name": "loadgen-fleet-" + suffix}, 201)
	if err != nil {
		return err
	}
	_ = json.Unmarshal(data, &st)
	r.stackID = st.ID
	if _, err := r.admin(ctx, "POST", "/api/v1/stacks/"+r.stackID+"/labels", "loadgen-fleet", 201); err != nil {
		return err
	}
	if data, err = r.admin(ctx, "POST", "/api/v1/stacks", map[string]any{"name": "loadgen-churn-" + suffix}, 201); err != nil {
		return err
	}
	_ = json.Unmarshal(data, &st)
	r.churnID = st.ID

	r.agents = make([]*simAgent, r.cfg.Agents)
	jobs := make(chan int)
	errc := make(chan error, r.cfg.SetupWorkers)
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.SetupWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				data, err := r.admin(ctx, "POST", "/api/v1/agents",
					map[string]any{"name": fmt.Sprintf("sim-%s-%05d", suffix, i), "cluster_name": "loadgen"}, 201)
				if err != nil {
					errc <- err
					return
				}
				var out struct {
					Agent struct {
						ID string `json:"id"`
					} `json:"agent"`
					PAK string `json:"initial_pak"`
				}
				_ = json.Unmarshal(data, &out)
				if _, err := r.admin(ctx, "POST", "/api/v1/agents/"+out.Agent.ID+"/labels", "loadgen-fleet", 201); err != nil {
					errc <- err
					return
				}
				r.agents[i] = &simAgent{id: out.Agent.ID, pak: out.PAK, base: r.cfg.URLs[i%len(r.cfg.URLs)], seen: map[string]bool{}}
			}
		}()
	}
	start := time.Now()
	var ferr error
feed:
	for i := 0; i < r.cfg.Agents; i++ {
		select {
		case jobs <- i:
		case ferr = <-errc:
			break feed
		case <-ctx.Done():
			ferr = ctx.Err()
			break feed
		}
		if i > 0 && i%1000 == 0 {
			r.logf("created %d agents (%.0f/s)", i, float64(i)/time.Since(start).Seconds())
		}
	}
	close(jobs)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errc:
		default:
		}
	}
	if ferr != nil {
		return fmt.Errorf("setup: %w", ferr)
	}
	// One deployment so every agent has something to hold.
	if err := r.deploy(ctx); err != nil {
		return err
	}
	r.logf("set up %d agents in %s", r.cfg.Agents, time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *Runner) deploy(ctx context.Context) error {
	n := len(r.order)
	yaml := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loadgen\n  namespace: default\ndata:\n  change: \"%d\"\n", n)
	data, err := r.admin(ctx, "POST", "/api/v1/stacks/"+r.stackID+"/deployment-objects", map[string]any{"yaml_content": yaml}, 201)
	if err != nil {
		return err
	}
	// The commit happened just before this response: propagation counts
	// from here (the POST's own latency is the "admin" route's). An agent
	// may see the object a little earlier; that counts as 0.
	c := &change{sent: time.Now()}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &obj)
	c.id = obj.ID
	r.chMu.Lock()
	r.changes[obj.ID] = c
	r.order = append(r.order, c)
	r.chMu.Unlock()
	return nil
}

// targetState runs one target-state request for a, noting the objects it
// sees for the first time.
func (r *Runner) targetState(ctx context.Context, a *simAgent, wait time.Duration) (int, error) {
	if a.restart.Swap(false) {
		a.mu.Lock()
		a.etag = ""
		a.mu.Unlock()
	}
	a.mu.Lock()
	etag := a.etag
	a.mu.Unlock()
	path := a.base + "/api/v1/agents/" + a.id + "/target-state"
	route := "target-state"
	if wait > 0 {
		path += "?wait=" + wait.String()
		route = "target-state?wait"
	}
	hdr := map[string]string{}
	if etag != "" {
		hdr["If-None-Match"] = etag
	}
	status, data, h, err := r.do(ctx, route, "GET", path, a.pak, nil, hdr)
	if err != nil || status != 200 {
		return status, err
	}
	now := time.Now()
	var objs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &objs); err != nil {
		return status, err
	}
	a.mu.Lock()
	a.etag = h.Get("ETag")
	var fresh []string
	for _, o := range objs {
		if !a.seen[o.ID] {
			a.seen[o.ID] = true
			fresh = append(fresh, o.ID)
		}
	}
	a.mu.Unlock()
	for _, id := range fresh {
		// Sightings are matched with changes at the end: an agent may see
		// an object before its POST's response reaches the changer.
		r.chMu.Lock()
		r.sightings[id] = append(r.sightings[id], now)
		r.chMu.Unlock()
		if r.cfg.Ack {
			go r.ack(ctx, a, id)
		}
	}
	return status, nil
}

// ack reports SUCCESS and healthy for an object after a random apply time.
func (r *Runner) ack(ctx context.Context, a *simAgent, objID string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(rand.Int64N(int64(r.cfg.AckDelay)))):
	}
	ev, _ := json.Marshal(map[string]any{"deployment_object_id": objID, "event_type": "DEPLOY", "status": "SUCCESS",
		"message": "applied by loadgen"})
	_, _, _, _ = r.do(ctx, "events", "POST", a.base+"/api/v1/agents/"+a.id+"/events", a.pak, ev, nil)
	hb, _ := json.Marshal(map[string]any{"deployment_objects": []map[string]any{{"id": objID, "status": "healthy",
		"summary": map[string]any{"pods_ready": 1, "pods_total": 1}, "checked_at": time.Now().UTC().Format(time.RFC3339)}}})
	_, _, _, _ = r.do(ctx, "health-status", "PATCH", a.base+"/api/v1/agents/"+a.id+"/health-status", a.pak, hb, nil)
}

// every calls fn each period until ctx ends; the first call comes after a
// random part of period, so simulated agents do not act in step.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(period))))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
			t.Reset(period)
		}
	}
}

func (r *Runner) runAgent(ctx context.Context, a *simAgent) {
	if r.cfg.Heartbeat > 0 {
		go every(ctx, r.cfg.Heartbeat, func() {
			_, _, _, _ = r.do(ctx, "heartbeat", "POST", a.base+"/api/v1/agents/"+a.id+"/heartbeat", a.pak, nil, nil)
		})
	}
	if r.cfg.PollInterval > 0 {
		every(ctx, r.cfg.PollInterval, func() { _, _ = r.targetState(ctx, a, 0) })
		return
	}
	// Long-poll: spread the first requests over the ramp (1 s per 1,000
	// agents), as a fleet does not connect in one instant.
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(rand.Int64N(int64(r.ramp())))):
	}
	for ctx.Err() == nil {
		status, err := r.targetState(ctx, a, r.cfg.Wait)
		if err != nil || status >= 400 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second + time.Duration(rand.Int64N(int64(time.Second)))):
			}
		}
	}
}

// Run runs the phases and returns the report.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Config: r.cfg}
	if r.cfg.Throughput > 0 {
		tp, err := r.throughput(ctx)
		if err != nil {
			return nil, err
		}
		rep.Throughput = tp
	}
	if r.cfg.Duration <= 0 {
		return rep, nil
	}
	// Every agent first fetches its state so the fleet phase starts warm.
	r.logf("warming %d agents", len(r.agents))
	r.parallel(ctx, func(a *simAgent) { _, _ = r.targetState(ctx, a, 0) })
	before := r.stats.Snapshot()
	metricsBefore := scrapeAll(ctx, r.client, r.cfg.URLs)
	// The simulator shares the machine with what it measures: its own CPU
	// is reported next to the api's.
	pids := maps.Clone(r.cfg.PIDs)
	if pids == nil {
		pids = map[string]int{}
	}
	pids["loadgen (this simulator)"] = os.Getpid()
	sampler := NewSampler(pids, r.cfg.DBURL, r.cfg.DBName)
	sampler.Start(ctx)

	// Changes stop at Duration; agents run on until every change reached
	// every agent (at most 15 s more), so a late commit is not counted as
	// missing for want of time.
	actx, acancel := context.WithTimeout(ctx, r.cfg.Duration+15*time.Second)
	defer acancel()
	fctx, cancel := context.WithTimeout(actx, r.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range r.agents {
		wg.Add(1)
		go func() { defer wg.Done(); r.runAgent(actx, a) }()
	}
	firstChange := len(r.order)
	start := time.Now()
	r.driveChanges(fctx)
	for actx.Err() == nil && !r.allDelivered(firstChange) {
		time.Sleep(100 * time.Millisecond)
	}
	acancel()
	wg.Wait()
	elapsed := time.Since(start)
	rep.Fleet = r.stats.Snapshot().Since(before)
	rep.FleetElapsed = elapsed
	rep.Resources = sampler.Stop(ctx)
	rep.Index = diffMetrics(metricsBefore, scrapeAll(ctx, r.client, r.cfg.URLs))
	r.chMu.Lock()
	for _, c := range r.order[firstChange:] {
		res := ChangeResult{}
		for _, t := range r.sightings[c.id] {
			res.Latencies = append(res.Latencies, max(0, t.Sub(c.sent)))
		}
		res.Seen = len(res.Latencies)
		res.Missing = r.cfg.Agents - res.Seen
		rep.Changes = append(rep.Changes, res)
	}
	r.chMu.Unlock()
	return rep, nil
}

// driveChanges deploys objects, churns labels and restarts agents until
// ctx ends. The last change is made early enough to propagate.
func (r *Runner) driveChanges(ctx context.Context) {
	var changeC, churnC, restartC <-chan time.Time
	deadline, _ := ctx.Deadline()
	if r.cfg.ChangeEvery > 0 {
		t := time.NewTicker(r.cfg.ChangeEvery)
		defer t.Stop()
		changeC = t.C
	}
	if r.cfg.LabelChurn > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.LabelChurn))
		defer t.Stop()
		churnC = t.C
	}
	if r.cfg.Restarts > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Restarts))
		defer t.Stop()
		restartC = t.C
	}
	n := 0
	connected := time.Now().Add(r.ramp())
	for {
		select {
		case <-ctx.Done():
			return
		case <-changeC:
			if time.Now().Before(connected) {
				continue
			}
			// Leave the last 5 s (or a third of the run) for propagation.
			if time.Until(deadline) < min(5*time.Second, r.cfg.Duration/3) {
				continue
			}
			if err := r.deploy(ctx); err != nil && ctx.Err() == nil {
				r.logf("deploy failed: %v", err)
			}
		case <-churnC:
			n++
			label := fmt.Sprintf("churn-%d", n%8)
			if n%16 < 8 {
				_, _ = r.admin(ctx, "POST", "/api/v1/stacks/"+r.churnID+"/labels", label, 201)
			} else {
				_, _ = r.admin(ctx, "DELETE", "/api/v1/stacks/"+r.churnID+"/labels/"+label, nil, 204)
			}
		case <-restartC:
			r.agents[rand.IntN(len(r.agents))].restart.Store(true)
		}
	}
}

// ramp is how long the fleet takes to connect: 1 s per 1,000 agents.
func (r *Runner) ramp() time.Duration {
	return max(time.Second, time.Duration(len(r.agents))*time.Millisecond)
}

// allDelivered reports whether every change since first reached every agent.
func (r *Runner) allDelivered(first int) bool {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	for _, c := range r.order[first:] {
		if len(r.sightings[c.id]) < len(r.agents) {
			return false
		}
	}
	return true
}

func (r *Runner) parallel(ctx context.Context, fn func(a *simAgent)) {
	jobs := make(chan *simAgent)
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.Clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				fn(a)
			}
		}()
	}
	for _, a := range r.agents {
		if ctx.Err() != nil {
			break
		}
		jobs <- a
	}
	close(jobs)
	wg.Wait()
}

// scrapeAll reads the target-state index counters from every replica's
// /metrics (summed).
func scrapeAll(ctx context.Context, c *http.Client, urls []string) map[string]float64 {
	out := map[string]float64{}
	for _, u := range urls {
		req, _ := http.NewRequestWithContext(ctx, "GET", u+"/metrics", nil)
		resp, err := c.Do(req)
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "brokkr_target_state_index_") && !strings.HasPrefix(line, "brokkr_http_shed_total") {
				continue
			}
			name, val, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err == nil {
				out[name] += f
			}
		}
	}
	return out
}

func diffMetrics(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		name, _, _ := strings.Cut(k, "{")
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_bucket") ||
			strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum") {
			out[k] = v - before[k]
		} else {
			out[k] = v
		}
	}
	return out
}
