package httpserver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFamiliesRegisterOrReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := NewFamilies(reg)
	c := first.CounterVec("x_total", "x", "result")
	h := first.Histogram("x_seconds", "x", []float64{1})
	g := first.Gauge("x_now", "x")
	if err := first.Err(); err != nil {
		t.Fatal(err)
	}
	second := NewFamilies(reg)
	c2 := second.CounterVec("x_total", "x", "result")
	if err := second.Err(); err != nil {
		t.Fatalf("a second builder must reuse the families: %v", err)
	}
	c2.WithLabelValues("ok").Inc()
	if got := testutil.ToFloat64(c.WithLabelValues("ok")); got != 1 {
		t.Fatalf("reused counter: got %v, want 1", got)
	}
	h.Observe(0.5)
	g.Set(3)
	if n := testutil.CollectAndCount(reg); n != 3 {
		t.Fatalf("registered families: got %d, want 3", n)
	}

	clash := NewFamilies(reg)
	clash.Gauge("x_total", "x") // same name, other type
	if clash.Err() == nil {
		t.Fatal("a clash must be reported")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Must must panic on a clash")
			}
		}()
		clash.Must()
	}()

	none := NewFamilies(nil)
	none.Counter("y_total", "y").Inc()
	if none.Err() != nil {
		t.Fatal("a nil registerer registers nothing and fails nothing")
	}
}
