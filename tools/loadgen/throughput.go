package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Case is one closed-loop measurement.
type Case struct {
	Name     string
	Requests int
	Elapsed  time.Duration
	P50, P99 time.Duration
	Errors   int // responses other than the expected status
	N5xx     int
}

// RPS is requests per second.
func (c Case) RPS() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Requests) / c.Elapsed.Seconds()
}

// ThroughputResult holds the broker's and the baseline's cases.
type ThroughputResult struct {
	Broker304, Broker200, Bare304, Bare200 Case
	BodyBytes                              int
}

// throughput drives Clients closed-loop clients for Throughput each: the
// broker's target state with a matching ETag (304) and without (200), and
// a bare net/http server on loopback answering the same way with a body of
// the same bytes, in the same run.
func (r *Runner) throughput(ctx context.Context) (ThroughputResult, error) {
	var res ThroughputResult
	// Learn every agent's ETag and one body.
	etags := make([]string, len(r.agents))
	var body []byte
	var mu sync.Mutex
	idx := map[*simAgent]int{}
	for i, a := range r.agents {
		idx[a] = i
	}
	r.parallel(ctx, func(a *simAgent) {
		st, data, h, err := r.do(ctx, "warm", "GET", a.base+"/api/v1/agents/"+a.id+"/target-state", a.pak, nil, nil)
		if err == nil && st == 200 {
			mu.Lock()
			etags[idx[a]] = h.Get("ETag")
			body = data
			mu.Unlock()
		}
	})
	res.BodyBytes = len(body)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	const bareETag = `"bare"`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("ETag", bareETag)
		if req.Header.Get("If-None-Match") == bareETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	bare := "http://" + ln.Addr().String()

	run := func(name string, want int, req func(i int) (*http.Request, error)) Case {
		r.logf("throughput: %s for %s with %d clients", name, r.cfg.Throughput, r.cfg.Clients)
		cctx, cancel := context.WithTimeout(ctx, r.cfg.Throughput)
		defer cancel()
		var next atomic.Int64
		var lmu sync.Mutex
		var lats []time.Duration
		var errs, n5xx atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for c := 0; c < r.cfg.Clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 4096)
				for cctx.Err() == nil {
					i := int(next.Add(1))
					rq, err := req(i)
					if err != nil {
						return
					}
					t0 := time.Now()
					resp, err := r.client.Do(rq.WithContext(cctx))
					if err != nil {
						if cctx.Err() == nil {
							errs.Add(1)
						}
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(t0))
					if resp.StatusCode != want {
						errs.Add(1)
					}
					if resp.StatusCode >= 500 {
						n5xx.Add(1)
					}
				}
				lmu.Lock()
				lats = append(lats, local...)
				lmu.Unlock()
			}()
		}
		wg.Wait()
		return Case{Name: name, Requests: len(lats), Elapsed: time.Since(start), P50: Percentile(lats, 50),
			P99: Percentile(lats, 99), Errors: int(errs.Load()), N5xx: int(n5xx.Load())}
	}
	brokerReq := func(withETag bool) func(i int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			a := r.agents[i%len(r.agents)]
			rq, err := http.NewRequest("GET", a.base+"/api/v1/agents/"+a.id+"/target-state", nil)
			if err != nil {
				return nil, err
			}
			rq.Header.Set("Authorization", "Bearer "+a.pak)
			if withETag {
				rq.Header.Set("If-None-Match", etags[i%len(r.agents)])
			}
			return rq, nil
		}
	}
	bareReq := func(withETag bool) func(i int) (*http.Request, error) {
		return func(int) (*http.Request, error) {
			rq, err := http.NewRequest("GET", bare+"/api/v1/agents/x/target-state", nil)
			if err != nil {
				return nil, err
			}
			rq.Header.Set("Authorization", "Bearer x")
			if withETag {
				rq.Header.Set("If-None-Match", bareETag)
			}
			return rq, nil
		}
	}
	// Interleaved so a change in the machine's load hits both sides.
	res.Bare304 = run("bare net/http 304", 304, bareReq(true))
	res.Broker304 = run("broker 304", 304, brokerReq(true))
	res.Bare200 = run("bare net/http 200", 200, bareReq(false))
	res.Broker200 = run("broker 200", 200, brokerReq(false))
	return res, nil
}
