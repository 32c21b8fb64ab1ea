package detector

import "math"

// median returns the median of v (NaN when empty), reordering v. It runs in
// linear time (quickselect): medians are taken at every poll of every
// string, on noisy data where sorting would dominate the detector's cost.
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	k := n / 2
	selectK(v, k)
	if n%2 == 1 {
		return v[k]
	}
	lower := v[0]
	for _, x := range v[1:k] {
		lower = max(lower, x)
	}
	return (lower + v[k]) / 2
}

// selectK reorders v so that v[k] is the value a sort would put there, with
// nothing larger before it and nothing smaller after it. Pivots are the
// median of three, so the result is deterministic.
func selectK(v []float64, k int) {
	lo, hi := 0, len(v)-1
	for hi-lo > 16 {
		mid := lo + (hi-lo)/2
		// Order v[lo], v[mid], v[hi]; the median becomes the pivot.
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return // v[j+1..i-1] all equal the pivot
		}
	}
	for a := lo + 1; a <= hi; a++ { // insertion sort of the small rest
		for b := a; b > lo && v[b] < v[b-1]; b-- {
			v[b], v[b-1] = v[b-1], v[b]
		}
	}
}
