package stitch

import (
	"strconv"
	"testing"
)

// BenchmarkBeginEnd measures registering and finishing one inbound request
// in a registry that is already full of finished entries (steady state:
// every Begin evicts one).
func BenchmarkBeginEnd(b *testing.B) {
	r := New(Settings{MaxEntries: 1024}, NewMetrics(nil))
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = "req-" + strconv.Itoa(i)
	}
	for i := range 1024 {
		r.Begin(entry(i, ids[i]))()
	}
	e := entry(1, "")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.CorrelationID = ids[i%len(ids)]
		r.Begin(e)()
		i++
	}
}

// BenchmarkLookup measures a hit on an in-flight entry among 1024.
func BenchmarkLookup(b *testing.B) {
	r := New(Settings{MaxEntries: 1024}, NewMetrics(nil))
	for i := range 1024 {
		r.Begin(entry(i, "req-"+strconv.Itoa(i)))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup("req-512"); !ok {
			b.Fatal("miss")
		}
	}
}
