// Package defaults fills the unset fields of option structs.
package defaults

// Number is what Set defaults: counts, sizes and durations.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~float32 | ~float64
}

// Set puts d in *v when *v is zero or negative (unset, or not usable).
func Set[T Number](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
