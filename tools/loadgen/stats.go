package loadgen

import (
	"slices"
	"sync"
	"time"
)

// Stats records every response by route: status counts and latencies.
type Stats struct {
	mu     sync.Mutex
	routes map[string]*routeStats
}

type routeStats struct {
	status map[int]int
	lat    []time.Duration
}

// NewStats returns empty stats.
func NewStats() *Stats { return &Stats{routes: map[string]*routeStats{}} }

// Record adds one response (status 0: transport error).
func (s *Stats) Record(route string, status int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil {
		r = &routeStats{status: map[int]int{}}
		s.routes[route] = r
	}
	r.status[status]++
	r.lat = append(r.lat, d)
}

// Snapshot is a copy of the stats at one moment.
type Snapshot map[string]RouteSnapshot

// RouteSnapshot is one route's numbers.
type RouteSnapshot struct {
	Status    map[int]int
	Latencies []time.Duration
}

// Snapshot copies the stats.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Snapshot{}
	for k, r := range s.routes {
		st := map[int]int{}
		for c, n := range r.status {
			st[c] = n
		}
		out[k] = RouteSnapshot{Status: st, Latencies: slices.Clone(r.lat)}
	}
	return out
}

// Since is what happened after before.
func (s Snapshot) Since(before Snapshot) Snapshot {
	out := Snapshot{}
	for k, r := range s {
		b := before[k]
		st := map[int]int{}
		for c, n := range r.Status {
			if d := n - b.Status[c]; d > 0 {
				st[c] = d
			}
		}
		out[k] = RouteSnapshot{Status: st, Latencies: slices.Clone(r.Latencies[min(len(b.Latencies), len(r.Latencies)):])}
	}
	return out
}

// Count is the number of responses.
func (r RouteSnapshot) Count() int { return len(r.Latencies) }

// Errors5xx counts responses ≥ 500 (503 included) and transport errors (0).
func (r RouteSnapshot) Errors5xx() (n5xx, n503, transport int) {
	for c, n := range r.Status {
		switch {
		case c == 0:
			transport += n
		case c == 503:
			n503 += n
			n5xx += n
		case c >= 500:
			n5xx += n
		}
	}
	return
}

// Percentile returns the p-th percentile (0–100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
