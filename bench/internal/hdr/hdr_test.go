package hdr

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestIndexRoundTrip checks that every value falls in a bucket whose range
// holds it, and that the bucket is at most 0.1 % wide relative to its values.
func TestIndexRoundTrip(t *testing.T) {
	values := []int64{0, 1, 2047, 2048, 2049, 4095, 4096, 1_000_000, 123_456_789, maxValue - 1, maxValue}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Int64N(maxValue+1))
	}
	for _, v := range values {
		i := index(v)
		if i < 0 || i >= buckets {
			t.Fatalf("index(%d) = %d, outside [0, %d)", v, i, buckets)
		}
		hi := highest(i)
		lo := int64(0)
		if i > 0 {
			lo = highest(i-1) + 1
		}
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if width := hi - lo + 1; float64(width) > float64(lo)/1000+1 {
			t.Fatalf("bucket %d = [%d, %d] is %d wide: more than 0.1 %% of %d", i, lo, hi, width, lo)
		}
	}
}

// TestQuantileMatchesSortedSample compares percentiles with those of the
// sorted raw sample: equal within the bucket's 0.1 %.
func TestQuantileMatchesSortedSample(t *testing.T) {
	h := New()
	r := rand.New(rand.NewPCG(3, 4))
	var raw []int64
	for range 50000 {
		v := int64(50_000 + r.ExpFloat64()*200_000) // 50 µs + exp(200 µs)
		raw = append(raw, v)
		h.Record(time.Duration(v))
	}
	slices.Sort(raw)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(q*float64(len(raw)) + 0.999999)
		want := raw[rank-1]
		got := int64(h.Quantile(q))
		if got < want || float64(got-want) > float64(want)/1000+1 {
			t.Errorf("q%.3f = %d ns, sorted sample says %d ns", q, got, want)
		}
	}
	if h.Count() != 50000 || int64(h.Max()) != raw[len(raw)-1] || int64(h.Min()) != raw[0] {
		t.Errorf("count %d min %v max %v, want 50000 %v %v", h.Count(), h.Min(), h.Max(), raw[0], raw[len(raw)-1])
	}
}

func TestMergeAndClamp(t *testing.T) {
	a, b := New(), New()
	a.Record(time.Millisecond)
	a.Record(-time.Second) // counts as 0
	b.Record(2 * Max)      // clamped
	b.Record(3 * time.Millisecond)
	a.Merge(b)
	if a.Count() != 4 || a.Clamped() != 1 || a.Max() != Max || a.Min() != 0 {
		t.Fatalf("merged: count %d clamped %d min %v max %v", a.Count(), a.Clamped(), a.Min(), a.Max())
	}
	if got := a.Quantile(0.5); got < time.Millisecond || got > time.Millisecond+time.Microsecond {
		t.Errorf("median %v, want about 1ms", got)
	}
	var total int64
	for _, b := range a.Buckets(0) {
		total += b[1]
	}
	if total != 4 {
		t.Errorf("buckets hold %d values, want 4", total)
	}
	if New().Quantile(0.99) != 0 || New().Mean() != 0 {
		t.Error("an empty histogram must report 0")
	}
}

// TestBucketsMerge: merged buckets keep every count, stay in order, and
// are at most the requested width. The sample is dense (about 80 values
// per fine bucket), so no empty bucket separates two merged ones and each
// spans from the previous one's end.
func TestBucketsMerge(t *testing.T) {
	h := New()
	r := rand.New(rand.NewPCG(5, 6))
	for range 50000 {
		h.Record(time.Duration(100_000 + r.Int64N(50_000)))
	}
	fine, coarse := h.Buckets(0), h.Buckets(0.01)
	if len(coarse) >= len(fine)/5 {
		t.Fatalf("%d merged buckets from %d: merging at 1 %% should shrink it more", len(coarse), len(fine))
	}
	var total int64
	prev := int64(-1)
	for i, b := range coarse {
		total += b[1]
		if b[0] <= prev {
			t.Fatalf("bucket %d ends at %d, not after %d", i, b[0], prev)
		}
		if i > 0 && float64(b[0]-prev) > 0.011*float64(prev) {
			t.Fatalf("bucket %d spans %d..%d, wider than 1 %%", i, prev, b[0])
		}
		prev = b[0]
	}
	if total != 50000 {
		t.Fatalf("merged buckets hold %d values, want 50000", total)
	}
}
