package defaults

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	var o struct {
		Wait  time.Duration
		Count int
		Keep  int
	}
	o.Count, o.Keep = -1, 7
	Set(&o.Wait, 5*time.Second)
	Set(&o.Count, 3)
	Set(&o.Keep, 9)
	if o.Wait != 5*time.Second || o.Count != 3 || o.Keep != 7 {
		t.Fatalf("got %+v", o)
	}
}
