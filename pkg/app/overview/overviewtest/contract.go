package overviewtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// World creates agents in the backing store.
type World interface {
	Agent(t *testing.T, a Agent) uuid.UUID
}

// Repos is one implementation under test.
type Repos struct {
	Read  overview.ReadModel
	World World
}

func ago(d time.Duration) *time.Duration { return &d }

// RunFleetContract checks the fleet queries' filters, heartbeat states,
// sort orders, paging and counts.
func RunFleetContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()
	// Lower-case ASCII names: ordering then means the same under any
	// collation.
	fleet := func(t *testing.T) Repos {
		r := newRepos(t)
		for _, a := range []Agent{
			{Name: "a-online", Cluster: "zeta", HeartbeatAgo: ago(5 * time.Second), CreatedAgo: 5 * 24 * time.Hour, Labels: []string{"env:prod"}},
			{Name: "b-stale", Cluster: "alpha", HeartbeatAgo: ago(time.Hour), CreatedAgo: 4 * 24 * time.Hour, Labels: []string{"env:dev"}},
			{Name: "c-never", Cluster: "mid", CreatedAgo: 3 * 24 * time.Hour},
			{Name: "d-inactive", Cluster: "mid", Inactive: true, HeartbeatAgo: ago(3 * time.Second), CreatedAgo: 2 * 24 * time.Hour},
			{Name: "e-failing", Cluster: "beta", HeartbeatAgo: ago(10 * time.Second), CreatedAgo: 24 * time.Hour,
				Labels: []string{"env:prod"}, Failing: true},
		} {
			r.World.Agent(t, a)
		}
		return r
	}
	q := func(mod func(*overview.FleetQuery)) overview.FleetQuery {
		q := overview.FleetQuery{Sort: overview.SortName, Limit: 50, StaleAfter: 5 * time.Minute}
		if mod != nil {
			mod(&q)
		}
		return q
	}
	names := func(t *testing.T, r Repos, q overview.FleetQuery) []string {
		t.Helper()
		rows, err := r.Read.Fleet(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, row := range rows {
			out = append(out, row.Name)
		}
		n, err := r.Read.CountFleet(ctx, overview.FleetQuery{Text: q.Text, Label: q.Label, State: q.State, StaleAfter: q.StaleAfter})
		if err != nil || (q.Offset == 0 && q.Limit >= 5 && n != len(out)) {
			t.Fatalf("CountFleet %d %v, Fleet %v", n, err, out)
		}
		return out
	}

	t.Run("sort orders and paging", func(t *testing.T) {
		r := fleet(t)
		for _, c := range []struct {
			name string
			q    overview.FleetQuery
			want []string
		}{
			{"name", q(nil), []string{"a-online", "b-stale", "c-never", "d-inactive", "e-failing"}},
			{"name desc", q(func(q *overview.FleetQuery) { q.Desc = true }), []string{"e-failing", "d-inactive", "c-never", "b-stale", "a-online"}},
			{"cluster", q(func(q *overview.FleetQuery) { q.Sort = overview.SortCluster }), []string{"b-stale", "e-failing", "c-never", "d-inactive", "a-online"}},
			{"heartbeat, never first", q(func(q *overview.FleetQuery) { q.Sort = overview.SortHeartbeat }),
				[]string{"c-never", "b-stale", "e-failing", "a-online", "d-inactive"}},
			{"created", q(func(q *overview.FleetQuery) { q.Sort = overview.SortCreated }), []string{"a-online", "b-stale", "c-never", "d-inactive", "e-failing"}},
			{"page", q(func(q *overview.FleetQuery) { q.Limit, q.Offset = 2, 1 }), []string{"b-stale", "c-never"}},
		} {
			if got := names(t, r, c.q); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("filters and heartbeat states", func(t *testing.T) {
		r := fleet(t)
		for _, c := range []struct {
			name string
			q    overview.FleetQuery
			want []string
		}{
			{"text in name, any case", q(func(q *overview.FleetQuery) { q.Text = "ONLINE" }), []string{"a-online"}},
			{"text in cluster", q(func(q *overview.FleetQuery) { q.Text = "mid" }), []string{"c-never", "d-inactive"}},
			{"text is literal", q(func(q *overview.FleetQuery) { q.Text = "_" }), nil},
			{"label", q(func(q *overview.FleetQuery) { q.Label = "env:prod" }), []string{"a-online", "e-failing"}},
			{"online", q(func(q *overview.FleetQuery) { q.State = overview.StateOnline }), []string{"a-online", "e-failing"}},
			{"stale", q(func(q *overview.FleetQuery) { q.State = overview.StateStale }), []string{"b-stale"}},
			{"never", q(func(q *overview.FleetQuery) { q.State = overview.StateNever }), []string{"c-never"}},
			{"inactive", q(func(q *overview.FleetQuery) { q.State = overview.StateInactive }), []string{"d-inactive"}},
			{"failing", q(func(q *overview.FleetQuery) { q.State = overview.StateFailing }), []string{"e-failing"}},
			{"wider stale window", q(func(q *overview.FleetQuery) { q.State, q.StaleAfter = overview.StateOnline, 2*time.Hour }),
				[]string{"a-online", "b-stale", "e-failing"}},
		} {
			if got := names(t, r, c.q); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		if _, err := r.Read.Fleet(ctx, q(func(q *overview.FleetQuery) { q.Sort = "size" })); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("unknown sort: %v", err)
		}
		if _, err := r.Read.CountFleet(ctx, q(func(q *overview.FleetQuery) { q.State = "asleep" })); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("unknown state: %v", err)
		}
	})

	t.Run("counts by state", func(t *testing.T) {
		r := fleet(t)
		got, err := r.Read.FleetCounts(ctx, 5*time.Minute)
		want := overview.Counts{Total: 5, Online: 2, Stale: 1, Never: 1, Inactive: 1, Failing: 1}
		if err != nil || got != want {
			t.Fatalf("counts %+v %v, want %+v", got, err, want)
		}
	})
}
