package httpserver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Families builds a component's metric families and registers each on one
// registerer with RegisterOrReuse (a second replica in the process shares
// the series). A nil registerer registers nothing: the families still
// count, for tests and for components run without a /metrics endpoint.
// Registration errors are collected in Err; the families returned are
// usable either way.
type Families struct {
	reg prometheus.Registerer
	err error
}

// NewFamilies returns a builder registering on reg (may be nil).
func NewFamilies(reg prometheus.Registerer) *Families { return &Families{reg: reg} }

// Err is the registration errors, joined (nil when there were none).
func (f *Families) Err() error { return f.err }

// Must panics on a registration error, as prometheus.MustRegister does.
func (f *Families) Must() {
	if f.err != nil {
		panic(f.err)
	}
}

// Counter is a counter without labels.
func (f *Families) Counter(name, help string) prometheus.Counter {
	return add(f, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec is a counter with labels.
func (f *Families) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return add(f, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Gauge is a gauge without labels.
func (f *Families) Gauge(name, help string) prometheus.Gauge {
	return add(f, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// GaugeVec is a gauge with labels.
func (f *Families) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return add(f, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

// Histogram is a histogram without labels.
func (f *Families) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return add(f, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}

// HistogramVec is a histogram with labels.
func (f *Families) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return add(f, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

func add[C prometheus.Collector](f *Families, c C) C {
	if f.reg == nil {
		return c
	}
	c, err := RegisterOrReuse(f.reg, c)
	f.err = errors.Join(f.err, err)
	return c
}
