package lifecycle

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// SOHBucket is the width of the buckets state-of-health readings are
// averaged in before the trend is fitted. Buckets are aligned to UTC
// midnight.
const SOHBucket = 6 * time.Hour

// sohCurrentSpan is how far back from the latest reading the current
// state of health looks: it is the median of the bucket means of the last
// day, so that one odd reading or bucket does not decide it.
const sohCurrentSpan = 24 * time.Hour

// bucket holds the readings of one SOHBucket.
type bucket struct {
	start int64 // Unix seconds, a multiple of SOHBucket
	sumT  float64
	sum   float64
	n     int
	// firstSec and lastSec are the times of the first and last reading.
	firstSec, lastSec int64
}

func (b *bucket) mean() float64 { return b.sum / float64(b.n) }

// midT is the mean time of the bucket's readings, in Unix seconds.
func (b *bucket) midT() float64 { return b.sumT / float64(b.n) }

// sohSeries is the state-of-health history of one battery string: bucket
// means over the last window. It keeps at most window/SOHBucket+1
// buckets.
type sohSeries struct {
	buckets []bucket // in time order
	ignored int      // readings out of (0, 1.5] or out of order
	// fit caches the trend of the closed buckets; fitN is the number of
	// closed buckets and fitEnd the start of the last one it was fitted
	// on.
	fit    trend
	fitN   int
	fitEnd int64
}

// trend is a Theil–Sen line through bucket means: y = intercept +
// slope·(t - t0), t in days.
type trend struct {
	ok               bool
	t0               float64 // Unix seconds
	slope, intercept float64 // per day; at t0
}

// observe adds one reading at Unix second sec; readings older than the
// latest bucket and values outside (0, 1.5] are ignored and counted.
func (s *sohSeries) observe(sec int64, ratio float64, window time.Duration) {
	if !(ratio > 0 && ratio <= 1.5) {
		s.ignored++
		return
	}
	w := int64(SOHBucket / time.Second)
	start := sec - ((sec%w)+w)%w
	n := len(s.buckets)
	switch {
	case n > 0 && start < s.buckets[n-1].start:
		s.ignored++
		return
	case n == 0 || start > s.buckets[n-1].start:
		s.buckets = append(s.buckets, bucket{start: start, firstSec: sec})
		cut := start - int64(window/time.Second)
		i := 0
		for i < len(s.buckets) && s.buckets[i].start+w <= cut {
			i++
		}
		if i > 0 {
			s.buckets = slices.Delete(s.buckets, 0, i)
		}
	}
	b := &s.buckets[len(s.buckets)-1]
	b.sum += ratio
	b.sumT += float64(sec)
	b.n++
	b.lastSec = max(b.lastSec, sec)
}

// SOHStatus is what the state-of-health history says about a string.
type SOHStatus struct {
	// Current is the state of health now: the median of the bucket means
	// of the last day of readings.
	Current float64
	// At is the calendar day of the latest reading.
	At Date
	// Limit is the limit that applies to this battery.
	Limit float64
	// Below reports Current < Limit.
	Below bool
	// Points is the number of buckets in the window; SpanDays how many
	// days they span (first to last reading).
	Points   int
	SpanDays float64
	// SlopePerYear is the fitted trend in ratio per year (negative when
	// falling); valid when Projected is set or Note says "not falling".
	SlopePerYear float64
	HasTrend     bool
	// Crossing is the day the trend reaches Limit; zero when it is not
	// projected (see Note).
	Crossing Date
	// Note says why there is no projection: too few points, or the trend
	// is not falling.
	Note string
}

// status evaluates the series with the given limit and requirements.
func (s *sohSeries) status(limit float64, minPoints int, minSpan time.Duration, loc *time.Location) (SOHStatus, bool) {
	n := len(s.buckets)
	if n == 0 {
		return SOHStatus{}, false
	}
	last := s.buckets[n-1]
	var recent []float64
	for i := n - 1; i >= 0 && s.buckets[i].start+int64(SOHBucket/time.Second) > last.lastSec-int64(sohCurrentSpan/time.Second); i-- {
		recent = append(recent, s.buckets[i].mean())
	}
	st := SOHStatus{
		Current: median(recent),
		At:      DateIn(time.Unix(last.lastSec, 0), loc),
		Limit:   limit,
		Points:  n,
	}
	st.Current = math.Round(st.Current*10000) / 10000
	st.Below = st.Current < limit
	span := float64(last.lastSec-s.buckets[0].firstSec) / 86400
	st.SpanDays = math.Round(span*10) / 10
	// The trend is fitted on closed buckets: all but the latest.
	closed := s.buckets[:n-1]
	if len(closed) < minPoints || span < minSpan.Hours()/24 {
		st.Note = fmt.Sprintf("too few points for a trend: %d six-hour buckets over %.1f days; a projection needs %d over %.0f days",
			n, st.SpanDays, minPoints, minSpan.Hours()/24)
		return st, true
	}
	if s.fitN != len(closed) || s.fitEnd != closed[len(closed)-1].start {
		s.fit = theilSen(closed)
		s.fitN, s.fitEnd = len(closed), closed[len(closed)-1].start
	}
	f := s.fit
	st.HasTrend = f.ok
	st.SlopePerYear = math.Round(f.slope*365.25*10000) / 10000
	if !f.ok || f.slope >= 0 {
		st.Note = "not falling"
		return st, true
	}
	days := (limit - f.intercept) / f.slope // from t0
	cross := f.t0 + days*86400
	if cross < f.t0 {
		// Already below the limit by the line: the crossing is in the
		// past; report the day the line crossed.
		cross = math.Max(cross, float64(s.buckets[0].start))
	}
	if cross > float64(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).Unix()) {
		st.Note = "falling too slowly to project"
		return st, true
	}
	st.Crossing = DateIn(time.Unix(int64(cross), 0), loc)
	return st, true
}

// theilSen fits the median slope of every pair of bucket means, and the
// median intercept, with t in days from the first bucket.
func theilSen(bs []bucket) trend {
	t0 := bs[0].midT()
	x := make([]float64, len(bs))
	y := make([]float64, len(bs))
	for i := range bs {
		x[i] = (bs[i].midT() - t0) / 86400
		y[i] = bs[i].mean()
	}
	slopes := make([]float64, 0, len(bs)*(len(bs)-1)/2)
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			if dx := x[j] - x[i]; dx > 0 {
				slopes = append(slopes, (y[j]-y[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return trend{}
	}
	slope := median(slopes)
	res := make([]float64, len(x))
	for i := range x {
		res[i] = y[i] - slope*x[i]
	}
	return trend{ok: true, t0: t0, slope: slope, intercept: median(res)}
}

// median returns the median of v, reordering it; NaN for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
