package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// BenchmarkIdempotentCreate measures POST /stacks/{id}/deployment-objects
// with a fresh Idempotency-Key per request (the key row, the lock and the
// buffered response are the overhead), a replay of a stored key, and the
// same create without a key as the baseline, in the same run.
func BenchmarkIdempotentCreate(b *testing.B) {
	e := apitest.New(b)
	stackID := e.CreateStack(e.AdminPAK, "bench-idem")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := e.URL + "/api/v1/stacks/" + stackID + "/deployment-objects"
	post := func(i int, key string) *http.Request {
		body := fmt.Sprintf(`{"yaml_content":%q}`, strings.Replace(benchDocumentPayload, "bench", fmt.Sprintf("bench-%d", i), 1))
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.AdminPAK)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		return req
	}
	b.Run("baseline-no-key", func(b *testing.B) {
		runRequests(b, client, func(i int) *http.Request { return post(i, "") }, http.StatusOK)
	})
	b.Run("new-key", func(b *testing.B) {
		run := b.N
		runRequests(b, client, func(i int) *http.Request { return post(i, fmt.Sprintf("new-%d-%d", run, i)) }, http.StatusOK)
	})
	b.Run("replay", func(b *testing.B) {
		const keys = 64
		for k := 0; k < keys; k++ {
			r, err := client.Do(post(-k, fmt.Sprintf("replay-%d", k)))
			if err != nil || r.StatusCode != 200 {
				b.Fatalf("seed: %v", err)
			}
			r.Body.Close()
		}
		runRequests(b, client, func(i int) *http.Request { return post(-(i % keys), fmt.Sprintf("replay-%d", i%keys)) }, http.StatusOK)
	})
}
