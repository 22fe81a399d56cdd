package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

const benchClaimers = 100

// BenchmarkClaimWorkOrders measures claims per second with 100 concurrent
// claimers, each claim for a distinct PENDING order targeted by label, in
// three ways on the same database in the same run:
//
//   - api: POST /work-orders/{id}/claim through the HTTP API as the agent
//     (authentication, the eligibility-checking UPDATE, audit entry and
//     outbox event in one transaction);
//   - usecase: the claim use case without HTTP;
//   - claim-statement: the single eligibility-checking UPDATE alone,
//     without the transaction's audit entry and outbox event;
//   - bare-update: a bare `UPDATE … WHERE status='PENDING' … RETURNING id`
//     with no eligibility check, audit or event: the floor.
//
// All three share one pool of 50 connections (the api's default).
func BenchmarkClaimWorkOrders(b *testing.B) {
	e := apitest.New(b)
	db := e.Store.DB()
	db.SetMaxOpenConns(50)
	db.SetMaxIdleConns(50)
	agents := make([]apitest.Agent, benchClaimers)
	for i := range agents {
		agents[i] = e.CreateAgent(fmt.Sprintf("bench-claimer-%03d", i), "bench")
		e.Must(201, "POST", "/api/v1/agents/"+agents[i].ID+"/labels", e.AdminPAK, `"bench"`)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClaimers, MaxConnsPerHost: benchClaimers}}
	svc := workorders.NewService(postgres.WorkOrderRepos(e.Store), nil)

	// seed creates n PENDING orders targeted at the "bench" label.
	seed := func(b *testing.B, n int) []uuid.UUID {
		b.Helper()
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `DELETE FROM work_orders`); err != nil {
			b.Fatal(err)
		}
		var ids []uuid.UUID
		if err := db.SelectContext(ctx, &ids, `INSERT INTO work_orders (work_type, yaml_content)
			SELECT 'custom', 'kind: Job' FROM generate_series(1, $1) RETURNING id`, n); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO work_order_labels (work_order_id, label) SELECT id, 'bench' FROM work_orders`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `ANALYZE work_orders, work_order_labels`); err != nil {
			b.Fatal(err)
		}
		return ids
	}

	// run hands the orders to 100 claimers and reports claims per second.
	run := func(b *testing.B, claim func(ctx context.Context, claimer int, id uuid.UUID) error) {
		ids := seed(b, b.N)
		work := make(chan uuid.UUID, len(ids))
		for _, id := range ids {
			work <- id
		}
		close(work)
		var wg sync.WaitGroup
		errs := make(chan error, benchClaimers)
		b.ResetTimer()
		start := time.Now()
		for c := range benchClaimers {
			wg.Go(func() {
				for id := range work {
					if err := claim(context.Background(), c, id); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		var left int
		_ = db.GetContext(context.Background(), &left, `SELECT count(*) FROM work_orders WHERE status = 'PENDING'`)
		if left != 0 {
			b.Fatalf("%d orders left unclaimed", left)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "claims/s")
	}

	b.Run("api", func(b *testing.B) {
		run(b, func(ctx context.Context, c int, id uuid.UUID) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", e.URL+"/api/v1/work-orders/"+id.String()+"/claim", nil)
			req.Header.Set("Authorization", "Bearer "+agents[c].PAK)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("claim: %d", resp.StatusCode)
			}
			return nil
		})
	})
	b.Run("usecase", func(b *testing.B) {
		run(b, func(ctx context.Context, c int, id uuid.UUID) error {
			ag := uuid.MustParse(agents[c].ID)
			_, err := svc.Claim(ctx, identity.Agent(ag), id, ag)
			return err
		})
	})
	orders := postgres.NewWorkOrders(e.Store)
	b.Run("claim-statement", func(b *testing.B) {
		run(b, func(ctx context.Context, c int, id uuid.UUID) error {
			_, err := orders.ClaimWorkOrder(ctx, id, uuid.MustParse(agents[c].ID))
			return err
		})
	})
	b.Run("bare-update", func(b *testing.B) {
		run(b, func(ctx context.Context, c int, id uuid.UUID) error {
			var got uuid.UUID
			return db.GetContext(ctx, &got, `UPDATE work_orders SET status = 'CLAIMED', claimed_by = $2, claimed_at = now()
				WHERE id = $1 AND status = 'PENDING' RETURNING id`, id, agents[c].ID)
		})
	})
}
