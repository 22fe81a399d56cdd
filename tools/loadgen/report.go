package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ChangeResult is one deployment change's propagation.
type ChangeResult struct {
	Seen, Missing int
	Latencies     []time.Duration
}

// Report is a run's result.
type Report struct {
	Config       Config
	Throughput   ThroughputResult
	Fleet        Snapshot
	FleetElapsed time.Duration
	Changes      []ChangeResult
	Resources    []Resource
	// Index is the target-state index counters of the replicas over the
	// fleet phase (from /metrics, summed over replicas).
	Index map[string]float64
}

// Server5xx counts responses ≥ 500 over the whole run, 503s separately.
func (r *Report) Server5xx() (n5xx, n503 int) {
	for _, rt := range r.Fleet {
		a, b, _ := rt.Errors5xx()
		n5xx += a
		n503 += b
	}
	tp := r.Throughput
	for _, c := range []Case{tp.Broker304, tp.Broker200} {
		n5xx += c.N5xx
	}
	return
}

// Missing is the number of (change, agent) pairs never delivered.
func (r *Report) Missing() int {
	n := 0
	for _, c := range r.Changes {
		n += c.Missing
	}
	return n
}

// Propagation is every (change, agent) latency.
func (r *Report) Propagation() []time.Duration {
	var out []time.Duration
	for _, c := range r.Changes {
		out = append(out, c.Latencies...)
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// Print writes the report as Markdown tables.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	mode := fmt.Sprintf("long-poll ?wait=%s", c.Wait)
	if c.PollInterval > 0 {
		mode = fmt.Sprintf("poll every %s", c.PollInterval)
	}
	fmt.Fprintf(w, "\n## loadgen: %d agents, %d replica(s), %s\n\n", c.Agents, len(c.URLs), mode)
	tp := r.Throughput
	if tp.Broker304.Requests > 0 {
		fmt.Fprintf(w, "Closed loop, %d clients, %s per case, body %d bytes:\n\n", c.Clients, c.Throughput, tp.BodyBytes)
		fmt.Fprintln(w, "| case | req/s | p50 | p99 | unexpected | vs bare net/http |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, row := range []struct {
			c, base Case
		}{{tp.Broker304, tp.Bare304}, {tp.Bare304, tp.Bare304}, {tp.Broker200, tp.Bare200}, {tp.Bare200, tp.Bare200}} {
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %.2f× |\n", row.c.Name, row.c.RPS(), ms(row.c.P50), ms(row.c.P99),
				row.c.Errors, row.c.RPS()/max(row.base.RPS(), 1))
		}
		fmt.Fprintln(w)
	}
	if r.FleetElapsed > 0 {
		fmt.Fprintf(w, "Fleet phase %s: changes every %s, label churn %.1f/s, restarts %.1f/s, heartbeat %s, ack %t\n\n",
			r.FleetElapsed.Round(time.Millisecond), c.ChangeEvery, c.LabelChurn, c.Restarts, c.Heartbeat, c.Ack)
		fmt.Fprintln(w, "| route | requests | req/s | p50 | p90 | p99 | statuses |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		names := make([]string, 0, len(r.Fleet))
		for k := range r.Fleet {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			rt := r.Fleet[k]
			codes := make([]int, 0, len(rt.Status))
			for code := range rt.Status {
				codes = append(codes, code)
			}
			slices.Sort(codes)
			st := ""
			for _, code := range codes {
				st += fmt.Sprintf("%d×%d ", code, rt.Status[code])
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s|\n", k, rt.Count(), float64(rt.Count())/r.FleetElapsed.Seconds(),
				ms(Percentile(rt.Latencies, 50)), ms(Percentile(rt.Latencies, 90)), ms(Percentile(rt.Latencies, 99)), st)
		}
		fmt.Fprintln(w)
		if len(r.Changes) > 0 {
			p := r.Propagation()
			fmt.Fprintf(w, "Propagation (object committed, i.e. its POST answered → agent's response carries it), %d changes × %d agents: p50 %s, p90 %s, p99 %s, max %s, missing %d\n\n",
				len(r.Changes), c.Agents, ms(Percentile(p, 50)), ms(Percentile(p, 90)), ms(Percentile(p, 99)), ms(Percentile(p, 100)), r.Missing())
			fmt.Fprint(w, "Agents reached per change:")
			for _, ch := range r.Changes {
				fmt.Fprintf(w, " %d/%d", ch.Seen, c.Agents)
			}
			fmt.Fprint(w, "\n\n")
		}
		if len(r.Resources) > 0 {
			fmt.Fprintln(w, "| process | CPU (cores, avg) | RSS at end |")
			fmt.Fprintln(w, "|---|---|---|")
			res := slices.Clone(r.Resources)
			sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
			for _, x := range res {
				fmt.Fprintf(w, "| %s | %.2f | %.0f MiB |\n", x.Name, x.CPU, x.RSSMiB)
			}
			fmt.Fprintln(w)
		}
		if q := wakeQuantiles(r.Index); q != nil {
			fmt.Fprintf(w, "Server-side fan-out (the api's own share: change notification received → woken long-poll's answer ready, %s over %.0f answers): p50 ≤ %s, p90 ≤ %s, p99 ≤ %s\n\n",
				wakeHistogram, float64(q[0]), ms(q[1]), ms(q[2]), ms(q[3]))
		}
		if len(r.Index) > 0 {
			keys := make([]string, 0, len(r.Index))
			for k := range r.Index {
				if !strings.HasPrefix(k, wakeHistogram) {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			fmt.Fprint(w, "Index over the fleet phase:")
			for _, k := range keys {
				fmt.Fprintf(w, " %s=%.0f", k, r.Index[k])
			}
			fmt.Fprintln(w)
		}
	}
	n5xx, n503 := r.Server5xx()
	fmt.Fprintf(w, "\nResponses ≥ 500: %d (of which 503: %d)\n", n5xx, n503)
}

// wakeHistogram is the api's fan-out histogram (see
// services/api/cmd/api/providers.go).
const wakeHistogram = "brokkr_target_state_index_wake_seconds"

// wakeQuantiles reads the fan-out histogram's buckets from the scraped
// metrics (summed over replicas, diffed over the fleet phase) and returns
// [count, p50, p90, p99], each the upper bound of the bucket the quantile
// falls in; nil when nothing was observed.
func wakeQuantiles(m map[string]float64) []time.Duration {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, wakeHistogram+`_bucket{le="`)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, v})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return nil
	}
	total := bs[len(bs)-1].n
	out := []time.Duration{time.Duration(total)}
	for _, q := range []float64{0.50, 0.90, 0.99} {
		for _, b := range bs {
			if b.n >= q*total {
				if math.IsInf(b.le, 1) {
					out = append(out, time.Duration(math.MaxInt64))
				} else {
					out = append(out, time.Duration(b.le*float64(time.Second)))
				}
				break
			}
		}
	}
	return out
}
