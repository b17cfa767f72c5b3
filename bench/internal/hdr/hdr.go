// Package hdr is a small high-dynamic-range histogram of durations in the
// manner of HdrHistogram: log-linear buckets that keep three significant
// decimal digits (a relative error below 0.1 %) over the whole range, in a
// fixed amount of memory, with cheap recording and exact merging.
//
// Values below 2048 ns are counted exactly; above, each power-of-two range
// is split into 1024 equal buckets. Values above [Max] are clamped to it and
// counted in [Histogram.Clamped].
package hdr

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits   = 11           // 2^11 = 2048 exact values at the bottom
	subCount  = 1 << subBits // 2048
	halfCount = subCount / 2 // 1024 buckets per power of two above
	maxShift  = 30           // highest shift: values up to 2^41 ns
	buckets   = subCount + maxShift*halfCount
	maxValue  = int64(1)<<(subBits+maxShift) - 1
	nsPerUsec = float64(time.Microsecond)
)

// Max is the largest duration recorded as itself (about 36 minutes).
const Max = time.Duration(maxValue)

// Histogram counts durations. The zero value is not usable: call [New].
// A Histogram is not safe for concurrent use; give each goroutine its own
// and [Histogram.Merge] them.
type Histogram struct {
	counts  []int64
	total   int64
	sum     float64 // of recorded values, ns, for the mean
	min     int64
	max     int64
	clamped int64
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{counts: make([]int64, buckets), min: math.MaxInt64}
}

// index returns the bucket of v, which is in [0, maxValue].
func index(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // >= 1
	top := v >> shift                        // in [1024, 2047]
	return subCount + (shift-1)*halfCount + int(top-halfCount)
}

// highest returns the largest value counted in bucket i.
func highest(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	top := int64((i-subCount)%halfCount + halfCount)
	return (top+1)<<shift - 1
}

// Record counts one duration. Negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
		h.clamped++
	}
	h.counts[index(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.clamped += o.clamped
	if o.total > 0 {
		h.min = min(h.min, o.min)
		h.max = max(h.max, o.max)
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.total }

// Clamped is the number of values above [Max], recorded as Max.
func (h *Histogram) Clamped() int64 { return h.clamped }

// Min is the smallest recorded value, 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Max is the largest recorded value (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the mean of the recorded values, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Quantile returns the value at or below which the fraction q (0..1) of the
// recorded values lie, as the highest value of its bucket (as HdrHistogram
// does), capped by the exact maximum. It is 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(int64(math.Ceil(q*float64(h.total))), 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(highest(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// Buckets lists the distribution for publishing beside the percentiles:
// pairs of [largest value in ns, count], in increasing order, adjacent
// non-empty buckets merged while the merged one stays within rel of its
// lower edge (0.01: buckets at most 1 % wide). rel 0 keeps every bucket.
func (h *Histogram) Buckets(rel float64) [][2]int64 {
	var out [][2]int64
	lower := int64(-1) // lower edge of the open merged bucket; -1: none
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, hi := int64(0), highest(i)
		if i > 0 {
			lo = highest(i-1) + 1
		}
		if lower >= 0 && float64(hi-lower) <= rel*float64(lower) {
			out[len(out)-1][0] = hi
			out[len(out)-1][1] += c
			continue
		}
		lower = lo
		out = append(out, [2]int64{hi, c})
	}
	return out
}

// Summary is the usual set of percentiles, in microseconds.
type Summary struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min_us"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// Summarize returns the count and the usual percentiles in microseconds.
func (h *Histogram) Summarize() Summary {
	us := func(d time.Duration) float64 { return float64(d) / nsPerUsec }
	return Summary{
		Count: h.total,
		Min:   us(h.Min()),
		Mean:  us(h.Mean()),
		P50:   us(h.Quantile(0.50)),
		P90:   us(h.Quantile(0.90)),
		P99:   us(h.Quantile(0.99)),
		P999:  us(h.Quantile(0.999)),
		Max:   us(h.Max()),
	}
}
