package chaos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is the webhook endpoint of the test, on loopback. It records
// every request; a delivery is identified by X-Brokkr-Delivery-Id, the id
// docs/webhooks.md tells receivers to deduplicate on.
type receiver struct {
	srv    *httptest.Server
	auth   string
	secret string
	token  string // in the URL path; must never be logged

	mu         sync.Mutex
	hits       map[string][]hit          // delivery id → requests
	byEvent    map[string]map[string]int // subscription path → event id → distinct delivery ids
	badSig     int
	badAuth    int
	total      int
	firstByKey map[string]time.Time // "<sub>|<type>|<key>" → first arrival
}

type hit struct {
	at        time.Time
	sub       string
	eventID   string
	eventType string
}

type envelope struct {
	ID        string         `json:"id"`
	EventType string         `json:"event_type"`
	Data      map[string]any `json:"data"`
}

// keyFields are the data fields by which the test finds the delivery of an
// effect it caused.
var keyFields = []string{"deployment_object_id", "agent_event_id", "work_order_id", "agent_id"}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{
		auth:       "Bearer chaos-auth-" + randHex(8),
		secret:     "chaos-sign-" + randHex(8),
		token:      "chaos-token-" + randHex(8),
		hits:       map[string][]hit{},
		byEvent:    map[string]map[string]int{},
		firstByKey: map[string]time.Time{},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// url is the address of one subscription: name distinguishes them.
func (r *receiver) url(name string) string { return r.srv.URL + "/hooks/" + r.token + "/" + name }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	sub := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
	m := hmac.New(sha256.New, []byte(r.secret))
	m.Write(body)
	sigOK := hmac.Equal([]byte("sha256="+hex.EncodeToString(m.Sum(nil))), []byte(req.Header.Get("X-Brokkr-Signature")))
	var env envelope
	_ = json.Unmarshal(body, &env)
	id := req.Header.Get("X-Brokkr-Delivery-Id")

	r.mu.Lock()
	r.total++
	if !sigOK {
		r.badSig++
	}
	if req.Header.Get("Authorization") != r.auth {
		r.badAuth++
	}
	prev := len(r.hits[id])
	r.hits[id] = append(r.hits[id], hit{at: now, sub: sub, eventID: env.ID, eventType: env.EventType})
	if prev == 0 {
		if r.byEvent[sub] == nil {
			r.byEvent[sub] = map[string]int{}
		}
		r.byEvent[sub][env.ID]++
		for _, f := range keyFields {
			if v, ok := env.Data[f].(string); ok {
				k := sub + "|" + env.EventType + "|" + v
				if _, seen := r.firstByKey[k]; !seen {
					r.firstByKey[k] = now
				}
			}
		}
	}
	r.mu.Unlock()
	// A receiver that takes a moment keeps attempts in flight, so a kill of
	// webhook-dispatch lands mid-delivery.
	time.Sleep(20 * time.Millisecond)
	w.WriteHeader(http.StatusOK)
}

// seen reports when sub first received an event of type typ whose data
// field (any of keyFields) equals key.
func (r *receiver) seen(sub, typ, key string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.firstByKey[sub+"|"+typ+"|"+key]
	return at, ok
}

func (r *receiver) delivered(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hits[id]) > 0
}

// repeats returns every delivery that arrived more than once.
func (r *receiver) repeats() map[string][]hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]hit{}
	for id, hs := range r.hits {
		if len(hs) > 1 {
			out[id] = append([]hit(nil), hs...)
		}
	}
	return out
}

// fanOutDuplicates counts events that reached one subscription under more
// than one delivery id (the fan-out must create one delivery per event and
// subscription, so this must be 0).
func (r *receiver) fanOutDuplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, evs := range r.byEvent {
		for _, k := range evs {
			if k > 1 {
				n += k - 1
			}
		}
	}
	return n
}

func (r *receiver) counts() (total, distinct, badSig, badAuth int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, len(r.hits), r.badSig, r.badAuth
}
