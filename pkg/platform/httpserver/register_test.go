package httpserver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterOrReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "brokkr_test_total", Help: "test"}
	first, err := RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second, err := RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil || second != first {
		t.Fatalf("second registration: %v, same collector %v; want the first one back", err, second == first)
	}
	// Same name, other type: not reusable, so an error.
	if _, err := RegisterOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "brokkr_test_total", Help: "test"})); err == nil {
		t.Fatal("a gauge under a counter's name was accepted")
	}
}
