package stitch

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// entry builds an entry whose span ID encodes n, so tests can tell them apart.
func entry(n int, cid string) Entry {
	var tid trace.TraceID
	var sid trace.SpanID
	tid[0], tid[15] = 0x4b, byte(n)
	sid[0], sid[7] = 0x01, byte(n)
	sid[6] = byte(n >> 8)
	return Entry{
		SpanContext:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
		CorrelationID: cid,
	}
}

func newTestRegistry(t *testing.T, s Settings) (*Registry, *fakeClock, *Metrics, *prometheus.Registry) {
	t.Helper()
	clock := newFakeClock()
	s.Clock = clock
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	return New(s, m), clock, m, reg
}

func mustLookup(t *testing.T, r *Registry, cid string, want Entry) {
	t.Helper()
	got, ok := r.Lookup(cid)
	if !ok {
		t.Fatalf("Lookup(%q) missed, want span %s", cid, want.SpanContext.SpanID())
	}
	if !got.SpanContext.Equal(want.SpanContext) || got.CorrelationID != want.CorrelationID {
		t.Fatalf("Lookup(%q) = span %s cid %q, want span %s cid %q", cid,
			got.SpanContext.SpanID(), got.CorrelationID, want.SpanContext.SpanID(), want.CorrelationID)
	}
}

func mustMiss(t *testing.T, r *Registry, cid string) {
	t.Helper()
	if got, ok := r.Lookup(cid); ok {
		t.Fatalf("Lookup(%q) = span %s, want a miss", cid, got.SpanContext.SpanID())
	}
}

func TestBeginLookupEndAndTTLExpiry(t *testing.T) {
	r, clock, m, _ := newTestRegistry(t, Settings{TTL: 10 * time.Second})
	e := entry(1, "order-42")
	mustMiss(t, r, "order-42")

	end := r.Begin(e)
	mustLookup(t, r, "order-42", e)
	clock.Advance(time.Hour) // in flight: no TTL applies
	mustLookup(t, r, "order-42", e)

	end()
	clock.Advance(10*time.Second - time.Nanosecond)
	mustLookup(t, r, "order-42", e) // finished, within the TTL counted from its end
	clock.Advance(time.Nanosecond)
	mustMiss(t, r, "order-42") // exactly TTL after the end: expired
	mustMiss(t, r, "")

	if hit, miss := testutil.ToFloat64(m.hit), testutil.ToFloat64(m.miss); hit != 3 || miss != 3 {
		t.Errorf("lookups hit=%v miss=%v, want 3 and 3", hit, miss)
	}
	end() // a second end is a no-op
	if got := testutil.ToFloat64(m.entries); got != 1 {
		t.Errorf("entries gauge = %v, want 1 (expired, not yet swept)", got)
	}
	r.Begin(entry(2, "next"))() // sweeps the expired entry
	if got := testutil.ToFloat64(m.entries); got != 1 {
		t.Errorf("entries gauge after sweep = %v, want 1 (only the new entry)", got)
	}
}

func TestEachEntryExpiresFromItsOwnEnd(t *testing.T) {
	r, clock, _, _ := newTestRegistry(t, Settings{TTL: 10 * time.Second})
	a, b := entry(1, "a"), entry(2, "b")
	endA := r.Begin(a)
	endB := r.Begin(b)
	endA()
	clock.Advance(6 * time.Second)
	endB()
	clock.Advance(6 * time.Second) // a ended 12s ago, b 6s ago
	mustMiss(t, r, "a")
	mustLookup(t, r, "b", b)
}

func TestDuplicateCorrelationIDReturnsMostRecent(t *testing.T) {
	r, clock, _, _ := newTestRegistry(t, Settings{TTL: time.Second})
	older, newer := entry(1, "dup"), entry(2, "dup")
	endOlder := r.Begin(older)
	endNewer := r.Begin(newer)
	mustLookup(t, r, "dup", newer)

	endNewer()
	clock.Advance(2 * time.Second) // newer expired; older still in flight
	mustLookup(t, r, "dup", older)
	r.Begin(entry(3, "other"))() // sweeps newer out of the chain
	mustLookup(t, r, "dup", older)
	endOlder()
	clock.Advance(2 * time.Second)
	mustMiss(t, r, "dup")
}

func TestNegativeTTLForgetsAtEnd(t *testing.T) {
	r, _, _, _ := newTestRegistry(t, Settings{TTL: -1})
	e := entry(1, "x")
	end := r.Begin(e)
	mustLookup(t, r, "x", e)
	end()
	mustMiss(t, r, "x")
}

func TestSole(t *testing.T) {
	r, _, _, _ := newTestRegistry(t, Settings{})
	if _, ok := r.Sole(); ok {
		t.Fatal("Sole with nothing in flight reported an entry")
	}
	a, b := entry(1, "a"), entry(2, "b")
	endA := r.Begin(a)
	got, ok := r.Sole()
	if !ok || !got.SpanContext.Equal(a.SpanContext) {
		t.Fatalf("Sole with one in flight = %v, %v; want a", got.SpanContext.SpanID(), ok)
	}
	endB := r.Begin(b)
	if got, ok := r.Sole(); ok {
		t.Fatalf("Sole with two in flight = %v, want none", got.SpanContext.SpanID())
	}
	endA()
	got, ok = r.Sole()
	if !ok || !got.SpanContext.Equal(b.SpanContext) {
		t.Fatalf("Sole after a ended = %v, %v; want b", got.SpanContext.SpanID(), ok)
	}
	endB()
	if _, ok := r.Sole(); ok {
		t.Fatal("Sole with only finished entries reported one")
	}
}

func TestFullRegistryEvictsOldestFinished(t *testing.T) {
	r, _, m, _ := newTestRegistry(t, Settings{MaxEntries: 3})
	a, b, c, d := entry(1, "a"), entry(2, "b"), entry(3, "c"), entry(4, "d")
	endA := r.Begin(a)
	endB := r.Begin(b)
	endC := r.Begin(c)
	endB() // b finishes first: the oldest finished
	endA()
	r.Begin(d)
	mustMiss(t, r, "b")
	mustLookup(t, r, "a", a)
	mustLookup(t, r, "c", c)
	mustLookup(t, r, "d", d)
	if got := testutil.ToFloat64(m.entries); got != 3 {
		t.Errorf("entries gauge = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.full); got != 0 {
		t.Errorf("full_total = %v, want 0 (room was made)", got)
	}
	endC()
}

func TestFullOfInFlightDoesNotStoreAndCounts(t *testing.T) {
	r, _, m, reg := newTestRegistry(t, Settings{MaxEntries: 2})
	a, b, c := entry(1, "a"), entry(2, "b"), entry(3, "c")
	endA := r.Begin(a)
	r.Begin(b)
	endC := r.Begin(c)
	mustMiss(t, r, "c")
	mustLookup(t, r, "a", a) // in-flight entries are never evicted
	mustLookup(t, r, "b", b)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP tracecar_stitch_full_total Inbound requests not remembered because every slot held a request still in flight.
# TYPE tracecar_stitch_full_total counter
tracecar_stitch_full_total 1
`), "tracecar_stitch_full_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.entries); got != 2 {
		t.Errorf("entries gauge = %v, want 2", got)
	}
	// c is not stored but is in flight: a and c end, b alone remains.
	endC()
	endC()
	endA()
	got, ok := r.Sole()
	if !ok || !got.SpanContext.Equal(b.SpanContext) {
		t.Fatalf("Sole = %v, %v; want b (the unstored entry's end must count once)", got.SpanContext.SpanID(), ok)
	}
}

func TestSoleIsFalseWhenAnUnstoredRequestIsInFlight(t *testing.T) {
	r, _, _, _ := newTestRegistry(t, Settings{MaxEntries: 1})
	r.Begin(entry(1, "a"))
	endB := r.Begin(entry(2, "b")) // not stored: full of in-flight entries
	if got, ok := r.Sole(); ok {
		t.Fatalf("Sole = %v with two requests in flight", got.SpanContext.SpanID())
	}
	endB()
	if _, ok := r.Sole(); !ok {
		t.Fatal("Sole missed the only request in flight")
	}
}

func TestConcurrentUse(t *testing.T) {
	r, clock, m, _ := newTestRegistry(t, Settings{MaxEntries: 64, TTL: time.Second})
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				cid := fmt.Sprintf("w%d-%d", w, i%50)
				e := entry(w*per+i, cid)
				end := r.Begin(e)
				if got, ok := r.Lookup(cid); ok && got.CorrelationID != cid {
					t.Errorf("Lookup(%q) returned an entry for %q", cid, got.CorrelationID)
				}
				r.Sole()
				if i%7 == 0 {
					clock.Advance(100 * time.Millisecond)
				}
				end()
			}
		})
	}
	wg.Wait()
	if _, ok := r.Sole(); ok {
		t.Error("Sole reported an entry with nothing in flight")
	}
	if got := testutil.ToFloat64(m.entries); got > 64 {
		t.Errorf("entries gauge = %v, over the bound 64", got)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight != 0 || r.active.n != 0 || r.finished.n > 64 {
		t.Errorf("after all ended: inFlight=%d active=%d finished=%d", r.inFlight, r.active.n, r.finished.n)
	}
	for id, rec := range r.byID {
		if rec.entry.CorrelationID != id || !rec.stored || rec.newer != nil {
			t.Errorf("index entry %q points at a record for %q (stored=%v)", id, rec.entry.CorrelationID, rec.stored)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	r := New(Settings{}, nil)
	e := entry(1, "x")
	end := r.Begin(e)
	mustLookup(t, r, "x", e)
	mustMiss(t, r, "y")
	end()
}

func TestLookupTraceFindsTheInboundRequestOfATrace(t *testing.T) {
	r, clock, _, _ := newTestRegistry(t, Settings{TTL: 10 * time.Second, MaxEntries: 2})
	a, b := entry(1, "cid-a"), entry(2, "cid-b")
	endA := r.Begin(a)
	if got, ok := r.LookupTrace(a.SpanContext.TraceID()); !ok || !got.SpanContext.Equal(a.SpanContext) || got.CorrelationID != "cid-a" {
		t.Fatalf("in flight: %+v %v, want %+v", got, ok, a)
	}
	endA()
	clock.Advance(9 * time.Second)
	if got, ok := r.LookupTrace(a.SpanContext.TraceID()); !ok || got.CorrelationID != "cid-a" {
		t.Errorf("finished within the TTL: %+v %v", got, ok)
	}
	clock.Advance(time.Second)
	if _, ok := r.LookupTrace(a.SpanContext.TraceID()); ok {
		t.Error("found after the TTL")
	}
	// Eviction forgets the trace too.
	endB := r.Begin(b)
	endB()
	r.Begin(entry(3, "cid-c"))()
	r.Begin(entry(4, "cid-d"))()
	if _, ok := r.LookupTrace(b.SpanContext.TraceID()); ok {
		t.Error("an evicted entry is still found by trace ID")
	}
}
