package detector

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// median must equal the median a sort gives, for any data: duplicates,
// quantised values, odd and even lengths, sorted and reversed input.
func TestMedianMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func(n int) []float64{
		"noise": func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			return v
		},
		"quantised": func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(rng.IntN(3))
			}
			return v
		},
		"sorted": func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(i)
			}
			return v
		},
		"reversed": func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(n - i)
			}
			return v
		},
		"constant": func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = 4.05
			}
			return v
		},
	}
	for name, gen := range gens {
		t.Run(name, func(t *testing.T) {
			for n := 1; n <= 300; n++ {
				v := gen(n)
				s := slices.Clone(v)
				slices.Sort(s)
				want := s[n/2]
				if n%2 == 0 {
					want = (s[n/2-1] + s[n/2]) / 2
				}
				if got := median(v); got != want {
					t.Fatalf("n=%d: median %v, sorting gives %v", n, got, want)
				}
			}
		})
	}
}
