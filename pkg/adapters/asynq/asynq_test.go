package asynq

import (
	"testing"
	"time"
)

func TestQueueNameSeparatesDeployments(t *testing.T) {
	for _, c := range []struct{ url, schema, want string }{
		{"postgres://u@h:5432/brokkr?sslmode=disable", "", "brokkr:brokkr"},
		{"postgres://u@h/tenants", "acme", "brokkr:tenants.acme"},
		{"postgres://u@h", "", "brokkr:brokkr"},
	} {
		if got := QueueName(c.url, c.schema); got != c.want {
			t.Errorf("QueueName(%q, %q) = %q, want %q", c.url, c.schema, got, c.want)
		}
	}
}

func TestCeilSecondNeverFiresEarly(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	if got := ceilSecond(base); !got.Equal(base) {
		t.Errorf("whole second moved: %v", got)
	}
	if got := ceilSecond(base.Add(time.Millisecond)); !got.Equal(base.Add(time.Second)) {
		t.Errorf("fraction not rounded up: %v", got)
	}
}

func TestEvery(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "@every 10s", 500 * time.Millisecond: "@every 1s", 1500 * time.Millisecond: "@every 1s",
		24 * time.Hour: "@every 24h0m0s",
	} {
		if got := every(d); got != want {
			t.Errorf("every(%v) = %q, want %q", d, got, want)
		}
	}
}
