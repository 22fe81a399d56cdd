package loadgen

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, 100 on every Linux the project runs on.
const clockTicks = 100

// Resource is one process's (or group's) use over a phase.
type Resource struct {
	Name string
	// CPU is the average number of cores used over the phase.
	CPU float64
	// RSSMiB is the resident set at the end (summed for a group).
	RSSMiB float64
}

// Sampler measures CPU between Start and Stop and RSS at Stop for the
// given processes, plus the PostgreSQL backends serving one database
// (found through pg_stat_activity, so other users of the server are not
// counted).
type Sampler struct {
	pids   map[string]int
	dbURL  string
	dbName string
	start  time.Time
	ticks  map[string]float64
	pg     map[int]float64
}

// NewSampler returns a sampler; dbURL/dbName may be empty.
func NewSampler(pids map[string]int, dbURL, dbName string) *Sampler {
	return &Sampler{pids: pids, dbURL: dbURL, dbName: dbName}
}

// Start records the starting counters.
func (s *Sampler) Start(ctx context.Context) {
	s.start = time.Now()
	s.ticks = map[string]float64{}
	for name, pid := range s.pids {
		s.ticks[name], _ = procTicks(pid)
	}
	s.pg = map[int]float64{}
	for _, pid := range s.backends(ctx) {
		s.pg[pid], _ = procTicks(pid)
	}
}

// Stop returns the use since Start.
func (s *Sampler) Stop(ctx context.Context) []Resource {
	secs := time.Since(s.start).Seconds()
	var out []Resource
	for name, pid := range s.pids {
		t, err := procTicks(pid)
		if err != nil {
			continue
		}
		out = append(out, Resource{Name: name, CPU: (t - s.ticks[name]) / clockTicks / secs, RSSMiB: procRSS(pid)})
	}
	if s.dbName != "" {
		var cpu, rss float64
		for _, pid := range s.backends(ctx) {
			t, err := procTicks(pid)
			if err != nil {
				continue
			}
			cpu += t - s.pg[pid] // a backend started meanwhile counts from 0
			rss += procRSS(pid)
		}
		out = append(out, Resource{Name: "postgres (this db's backends)", CPU: cpu / clockTicks / secs, RSSMiB: rss})
	}
	return out
}

func (s *Sampler) backends(ctx context.Context) []int {
	if s.dbURL == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		return nil
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, s.dbName)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out = append(out, pid)
		}
	}
	return out
}

// procTicks is utime+stime of pid in clock ticks.
func procTicks(pid int) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields restart after its ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, os.ErrInvalid
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return u + st, nil
}

// procRSS is VmRSS of pid in MiB.
func procRSS(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
