package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// spyCache wraps the ristretto cache to watch and perturb what Memory does.
type spyCache struct {
	recordCache
	mu       sync.Mutex
	sets     int
	badTTLs  int
	dropSets bool // SetWithTTL reports a dropped write
	hideGets bool // Get misses
}

func (s *spyCache) SetWithTTL(key string, v *cached, cost int64, ttl time.Duration) bool {
	s.mu.Lock()
	s.sets++
	if ttl <= 0 {
		s.badTTLs++
	}
	drop := s.dropSets
	s.mu.Unlock()
	if drop {
		return false
	}
	return s.recordCache.SetWithTTL(key, v, cost, ttl)
}

func (s *spyCache) Get(key string) (*cached, bool) {
	s.mu.Lock()
	hide := s.hideGets
	s.mu.Unlock()
	if hide {
		return nil, false
	}
	return s.recordCache.Get(key)
}

func newTestMemory(t *testing.T, s MemorySettings) (*Memory, *Metrics, *fakeClock, *spyCache) {
	t.Helper()
	clk := newFakeClock()
	if s.Clock == nil {
		s.Clock = clk
	}
	met := NewMetrics(prometheus.NewRegistry())
	m, err := NewMemory(s, met)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	spy := &spyCache{recordCache: m.cache}
	m.cache = spy
	return m, met, clk, spy
}

func lostTotal(m *Metrics) float64 {
	var n float64
	for _, r := range []string{LostSetDropped, LostNotVisible, LostEvicted, LostRejected} {
		n += testutil.ToFloat64(m.Lost.WithLabelValues(r))
	}
	return n
}

func TestNewMemorySettings(t *testing.T) {
	if _, err := NewMemory(MemorySettings{MaxBytes: -1}, nil); err == nil {
		t.Error("negative MaxBytes accepted")
	}
	if _, err := NewMemory(MemorySettings{MaxInFlight: -1}, nil); err == nil {
		t.Error("negative MaxInFlight accepted")
	}
	m, err := NewMemory(MemorySettings{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.maxInFlight != DefaultMaxInFlight {
		t.Errorf("MaxInFlight default %d", m.maxInFlight)
	}
	if c, ok := m.cache.(interface{ MaxCost() int64 }); !ok || c.MaxCost() != DefaultMaxBytes {
		t.Errorf("MaxBytes default not applied")
	}
}

// Research §8 item 25: the cache keys by 64-bit hashes; a collision must be a
// miss, never another scope's record.
func TestMemoryHashCollisionIsAMiss(t *testing.T) {
	for name, k2h := range map[string]func(string) (uint64, uint64){
		"both hashes collide":    func(string) (uint64, uint64) { return 1, 1 },
		"key hash collides only": func(k string) (uint64, uint64) { return 1, xxhash.Sum64String(k) },
	} {
		t.Run(name, func(t *testing.T) {
			m, met, _, _ := newTestMemory(t, MemorySettings{KeyToHash: k2h})
			ctx := context.Background()
			a := Scope{Principal: "alice", Method: "POST", Route: "/pay", Key: "same"}
			b := Scope{Principal: "bob", Method: "POST", Route: "/pay", Key: "same"}

			ca := mustClaim(t, m, a, time.Minute)
			if err := m.Complete(ctx, ca, &Record{State: StateCompleted, Response: &Response{Status: 200, Body: []byte("alice's receipt")}}, time.Hour); err != nil {
				t.Fatal(err)
			}
			// Bob's lookup lands on Alice's cache slot: a miss, so Bob executes.
			cb := mustClaim(t, m, b, time.Minute)
			if err := m.Complete(ctx, cb, &Record{State: StateCompleted, Response: &Response{Status: 200, Body: []byte("bob's receipt")}}, time.Hour); err != nil {
				t.Fatal(err)
			}
			for _, s := range []Scope{a, b} {
				c, rec, err := m.Claim(ctx, s, testFP, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if rec != nil && (rec.Scope != s || string(rec.Response.Body) != s.Principal+"'s receipt") {
					t.Fatalf("%s was handed %s's record", s.Principal, rec.Scope.Principal)
				}
				if c == nil && rec == nil {
					t.Fatal("neither claim nor record")
				}
			}
			// Exactly one of the two records could stay; the other is counted lost.
			if got := lostTotal(met); got != 1 {
				t.Errorf("lost_total = %v, want 1", got)
			}
		})
	}
}

// Research §8 item 24: past MaxBytes, no live claim is lost, every lost
// completed record is counted, and ristretto never sees ttl <= 0.
func TestMemoryOverflowKeepsClaimsAndCountsLosses(t *testing.T) {
	const maxBytes = 8 << 10
	m, met, _, spy := newTestMemory(t, MemorySettings{MaxBytes: maxBytes})
	ctx := context.Background()
	scope := func(kind string, i int) Scope {
		return Scope{Principal: "p", Method: "POST", Route: "/r", Key: fmt.Sprint(kind, i)}
	}

	const held, done = 20, 400
	claims := make([]*Claim, held)
	for i := range claims {
		claims[i] = mustClaim(t, m, scope("held", i), time.Hour)
	}
	body := make([]byte, 300)
	for i := range done {
		c := mustClaim(t, m, scope("done", i), time.Minute)
		if err := m.Complete(ctx, c, &Record{State: StateCompleted, Response: &Response{Status: 200, Body: body}}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}

	present := 0
	for i := range done {
		if v, ok := m.cache.Get(scope("done", i).ID()); ok && v.rec.Scope == scope("done", i) {
			present++
		}
	}
	lost := lostTotal(met)
	t.Logf("%d of %d records kept in %d bytes; lost: set_dropped=%v not_visible=%v evicted=%v rejected=%v", present, done, maxBytes,
		testutil.ToFloat64(met.Lost.WithLabelValues(LostSetDropped)), testutil.ToFloat64(met.Lost.WithLabelValues(LostNotVisible)),
		testutil.ToFloat64(met.Lost.WithLabelValues(LostEvicted)), testutil.ToFloat64(met.Lost.WithLabelValues(LostRejected)))
	if present == done || lost == 0 {
		t.Fatalf("the cache did not overflow (%d present, %v lost); the test is not testing anything", present, lost)
	}
	if int(lost) != done-present {
		t.Fatalf("lost_total = %v, but %d records are gone", lost, done-present)
	}
	if got := testutil.ToFloat64(met.Records); int(got) != held+present {
		t.Errorf("records gauge %v, want %d claims + %d completed", got, held, present)
	}
	if got := testutil.ToFloat64(met.Bytes); got <= 0 || got > maxBytes {
		t.Errorf("bytes gauge %v out of (0, %d]", got, maxBytes)
	}
	spy.mu.Lock()
	sets, bad := spy.sets, spy.badTTLs
	spy.mu.Unlock()
	if sets != done || bad != 0 {
		t.Errorf("%d Sets, %d with ttl <= 0; want %d and 0", sets, bad, done)
	}

	// Every held claim is still exact: in progress, and completable by its owner.
	for i, c := range claims {
		mustFind(t, m, scope("held", i), StateInProgress)
		if err := m.Complete(ctx, c, &Record{State: StateNotReplayable, Reason: "streaming response"}, time.Hour); err != nil {
			t.Fatalf("held claim %d: %v", i, err)
		}
	}
	// Every record that was lost is now counted as absent: a retry claims again.
	for i := range done {
		c, rec, err := m.Claim(ctx, scope("done", i), testFP, time.Minute)
		if err != nil || (c == nil) == (rec == nil) {
			t.Fatalf("Claim: %v %v %v", c, rec, err)
		}
	}
}

func TestMemoryLostWrites(t *testing.T) {
	for _, reason := range []string{LostSetDropped, LostNotVisible} {
		t.Run(reason, func(t *testing.T) {
			m, met, _, spy := newTestMemory(t, MemorySettings{})
			ctx := context.Background()
			c := mustClaim(t, m, testScope, time.Minute)
			spy.mu.Lock()
			spy.dropSets = reason == LostSetDropped
			spy.hideGets = reason == LostNotVisible
			spy.mu.Unlock()
			if err := m.Complete(ctx, c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(met.Lost.WithLabelValues(reason)); got != 1 {
				t.Fatalf("lost{%s} = %v, want 1", reason, got)
			}
			if got := lostTotal(met); got != 1 {
				t.Fatalf("lost_total = %v, want 1 (counted once)", got)
			}
			// Best effort: the claim is dropped, so a retry executes again.
			spy.mu.Lock()
			spy.dropSets, spy.hideGets = false, false
			spy.mu.Unlock()
			if reason == LostSetDropped {
				mustClaim(t, m, testScope, time.Minute)
			}
			if got := testutil.ToFloat64(met.Records); reason == LostSetDropped && got != 1 {
				t.Errorf("records gauge %v, want 1 (the new claim)", got)
			}
		})
	}
}

func TestMemoryExpiredRecordsAreNotCountedLost(t *testing.T) {
	m, met, clk, _ := newTestMemory(t, MemorySettings{})
	c := mustClaim(t, m, testScope, time.Minute)
	if err := m.Complete(context.Background(), c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	// Replacing an expired record is not a loss.
	c2 := mustClaim(t, m, testScope, time.Minute)
	if err := m.Complete(context.Background(), c2, &Record{State: StateNotReplayable, Reason: "streaming response"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := lostTotal(met); got != 0 {
		t.Fatalf("lost_total = %v after replacing an expired record", got)
	}
	if got := testutil.ToFloat64(met.Records); got != 1 {
		t.Errorf("records gauge %v, want 1", got)
	}
}

func TestMemoryMaxInFlight(t *testing.T) {
	m, met, clk, _ := newTestMemory(t, MemorySettings{MaxInFlight: 3})
	ctx := context.Background()
	scope := func(i int) Scope { return Scope{Principal: "p", Method: "POST", Route: "/r", Key: fmt.Sprint(i)} }
	claims := []*Claim{mustClaim(t, m, scope(0), time.Minute), mustClaim(t, m, scope(1), time.Minute), mustClaim(t, m, scope(2), 10*time.Minute)}

	if c, rec, err := m.Claim(ctx, scope(3), testFP, time.Minute); !errors.Is(err, ErrStoreFull) || c != nil || rec != nil {
		t.Fatalf("Claim over the bound: %v %v %v; want ErrStoreFull", c, rec, err)
	}
	if got := testutil.ToFloat64(met.Full); got != 1 {
		t.Fatalf("full_total = %v, want 1", got)
	}
	// Duplicates of held scopes still get their answer.
	mustFind(t, m, scope(0), StateInProgress)
	if got := testutil.ToFloat64(met.Records); got != 3 {
		t.Errorf("records gauge %v, want 3", got)
	}

	if err := m.Release(ctx, claims[0]); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, m, scope(3), time.Minute)
	// Claims whose lease lapsed are swept to make room.
	clk.Advance(time.Minute)
	mustClaim(t, m, scope(4), time.Minute)
	mustClaim(t, m, scope(5), time.Minute)
	if _, _, err := m.Claim(ctx, scope(6), testFP, time.Minute); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("Claim with scope 2 still leased: %v, want ErrStoreFull", err)
	}
	if got := testutil.ToFloat64(met.Records); got != 3 {
		t.Errorf("records gauge %v, want 3", got)
	}
}

func TestMemoryClaimHonoursCanceledContext(t *testing.T) {
	m, _, _, _ := newTestMemory(t, MemorySettings{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := m.Claim(ctx, testScope, testFP, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim: %v, want context.Canceled", err)
	}
	c := mustClaim(t, m, testScope, time.Minute)
	// Complete records the result even when the client's context is gone.
	if err := m.Complete(ctx, c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
		t.Fatalf("Complete with canceled ctx: %v", err)
	}
	mustFind(t, m, testScope, StateCompleted)
}
