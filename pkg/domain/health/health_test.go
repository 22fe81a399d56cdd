package health

import "testing"

func TestOverall(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, Unknown},
		{[]string{Unknown}, Unknown},
		{[]string{Healthy, Unknown}, Healthy},
		{[]string{Healthy, Degraded}, Degraded},
		{[]string{Degraded, Failing, Healthy}, Failing},
		{[]string{"bogus"}, Unknown},
	}
	for _, tt := range tests {
		if got := Overall(tt.in...); got != tt.want {
			t.Errorf("Overall(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if Valid("bogus") || !Valid(Failing) {
		t.Error("Valid is wrong")
	}
}
