package dedupe

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Memory store defaults.
const (
	// DefaultMaxBytes is the memory store's budget for completed records.
	DefaultMaxBytes = 64 << 20
	// DefaultMaxInFlight bounds the in-flight claims of the memory store.
	DefaultMaxInFlight = 10000

	// sizingRecordBytes is the record size assumed when sizing the cache's
	// frequency counters (ristretto wants about 10 counters per item).
	sizingRecordBytes = 1024
	minCounters       = 1000
)

// MemorySettings configures NewMemory. Zero values mean the defaults.
type MemorySettings struct {
	// MaxBytes is the budget, in encoded bytes plus ristretto's per-item
	// overhead, for completed records. Default DefaultMaxBytes. See README.md
	// for sizing: peak rate × retention × average record bytes × safety factor.
	MaxBytes int64
	// MaxInFlight bounds concurrent claims; over it Claim returns
	// ErrStoreFull. Default DefaultMaxInFlight.
	MaxInFlight int
	// Clock is used for every timestamp and expiry check. Default: system time.
	Clock Clock
	// KeyToHash replaces the cache's key hash (tests inject collisions).
	// Default: ristretto's.
	KeyToHash func(string) (uint64, uint64)
}

// recordCache is the part of the ristretto cache Memory uses.
type recordCache interface {
	SetWithTTL(key string, value *cached, cost int64, ttl time.Duration) bool
	Get(key string) (*cached, bool)
	Wait()
	Close()
}

// cached is a completed record in the cache. rec is never modified after
// it is published.
type cached struct {
	rec   *Record
	cost  int64
	state atomic.Uint32 // cachedPending → cachedHeld → cachedGone
	lost  atomic.Bool   // counted in Metrics.Lost (at most once)
}

const (
	cachedPending uint32 = iota
	cachedHeld
	cachedGone
)

type flight struct {
	claim      Claim
	createdAt  time.Time
	completing bool // Complete is publishing; the claim holds until it is visible
}

// Memory is the single-replica store. An exact in-flight map (under a
// mutex) decides who executes; completed records live in a ristretto cache
// bounded in bytes, which may drop, reject or evict them (best effort: every
// such loss of an unexpired record is counted in Metrics.Lost). Claims are
// never lost to cache pressure.
type Memory struct {
	clock       Clock
	metrics     *Metrics
	maxInFlight int
	cache       recordCache
	closing     atomic.Bool

	mu       sync.Mutex
	inflight map[string]*flight // by Scope.ID
}

var _ Store = (*Memory)(nil)

// NewMemory returns a memory store; m may be nil (metrics not exported).
// Call Close when done.
func NewMemory(s MemorySettings, m *Metrics) (*Memory, error) {
	switch {
	case s.MaxBytes < 0:
		return nil, fmt.Errorf("dedupe: negative MaxBytes %d", s.MaxBytes)
	case s.MaxInFlight < 0:
		return nil, fmt.Errorf("dedupe: negative MaxInFlight %d", s.MaxInFlight)
	}
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	mem := &Memory{
		clock:       clockOrSystem(s.Clock),
		metrics:     metricsOrNew(m),
		maxInFlight: s.MaxInFlight,
		inflight:    make(map[string]*flight),
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *cached]{
		NumCounters: max(s.MaxBytes/sizingRecordBytes*10, minCounters),
		MaxCost:     s.MaxBytes,
		BufferItems: 64, // ristretto's recommended Get buffer size
		// Cost is bytes, so ristretto's per-item overhead must count too.
		IgnoreInternalCost: false,
		KeyToHash:          s.KeyToHash,
		OnEvict:            func(it *ristretto.Item[*cached]) { mem.lose(it.Value, LostEvicted) },
		OnReject:           func(it *ristretto.Item[*cached]) { mem.lose(it.Value, LostRejected) },
		// OnExit also runs when a Set replaces a record under the same hash.
		OnExit: func(v *cached) {
			mem.lose(v, LostEvicted)
			mem.gone(v)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dedupe: memory store: %w", err)
	}
	mem.cache = cache
	return mem, nil
}

// Claim implements Store.
func (m *Memory) Claim(ctx context.Context, scope Scope, fp Fingerprint, lease time.Duration) (*Claim, *Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	lease, err := leaseOrDefault(lease)
	if err != nil {
		return nil, nil, err
	}
	id, owner := scope.ID(), newOwner()

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	f, hasFlight := m.inflight[id]
	if hasFlight && (f.completing || now.Before(f.claim.LeaseUntil)) {
		rec := inProgress(&f.claim, f.createdAt)
		rec.Owner = ""
		return nil, rec, nil
	}
	// The cache keys by 64-bit hashes: compare the full scope so a collision
	// is a miss, never another client's response.
	if v, ok := m.cache.Get(id); ok && v.rec.Scope == scope && live(v.rec, now) {
		return nil, publicView(v.rec), nil
	}
	if !hasFlight && len(m.inflight) >= m.maxInFlight {
		m.sweep(now)
		if len(m.inflight) >= m.maxInFlight {
			m.metrics.Full.Inc()
			return nil, nil, fmt.Errorf("%w: %d claims in flight", ErrStoreFull, m.maxInFlight)
		}
	}
	c := &Claim{Scope: scope, Fingerprint: fp, Owner: owner, LeaseUntil: now.Add(lease)}
	if !hasFlight {
		m.metrics.Records.Inc()
	}
	m.inflight[id] = &flight{claim: *c, createdAt: now}
	return c, nil, nil
}

// Complete implements Store. It does not watch ctx: a result is recorded
// even when the client has gone.
func (m *Memory) Complete(_ context.Context, c *Claim, rec *Record, retention time.Duration) error {
	now := m.clock.Now()
	final, err := finalRecord(c, rec, now, retention)
	if err != nil {
		return err
	}
	id := c.Scope.ID()

	m.mu.Lock()
	f, ok := m.inflight[id]
	if !ok || f.claim.Owner != c.Owner || f.completing {
		m.mu.Unlock()
		return fmt.Errorf("%w: scope %s", ErrNotOwner, c.Scope.KeyHash())
	}
	f.completing = true
	m.mu.Unlock()

	m.publish(id, final, now)

	// Only now, with the record visible (or counted as lost), does the claim end.
	m.mu.Lock()
	if m.inflight[id] == f {
		delete(m.inflight, id)
		m.metrics.Records.Dec()
	}
	m.mu.Unlock()
	return nil
}

// publish writes final to the cache and waits until Get sees it.
func (m *Memory) publish(id string, final *Record, now time.Time) {
	v := &cached{rec: final, cost: int64(final.encodedLen())}
	ttl := final.ExpiresAt.Sub(now)
	if ttl <= 0 {
		// Already expired (cannot happen with a positive retention). ristretto
		// reads ttl 0 as "never" and ttl < 0 as a no-op, so never pass either.
		return
	}
	if !m.cache.SetWithTTL(id, v, v.cost, ttl) {
		m.lose(v, LostSetDropped)
		return
	}
	m.cache.Wait()
	if got, ok := m.cache.Get(id); !ok || got != v {
		m.lose(v, LostNotVisible)
		return
	}
	if v.state.CompareAndSwap(cachedPending, cachedHeld) {
		m.metrics.Records.Inc()
		m.metrics.Bytes.Add(float64(v.cost))
	}
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, c *Claim) error {
	if c == nil {
		return fmt.Errorf("%w: no claim", ErrNotOwner)
	}
	id := c.Scope.ID()
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.inflight[id]
	if !ok || f.claim.Owner != c.Owner || f.completing {
		return fmt.Errorf("%w: scope %s", ErrNotOwner, c.Scope.KeyHash())
	}
	delete(m.inflight, id)
	m.metrics.Records.Dec()
	return nil
}

// Close stops the cache. Call it after the last use of m.
func (m *Memory) Close() {
	m.closing.Store(true)
	m.cache.Close()
}

// sweep drops claims whose lease lapsed. Callers hold m.mu.
func (m *Memory) sweep(now time.Time) {
	for id, f := range m.inflight {
		if !f.completing && !now.Before(f.claim.LeaseUntil) {
			delete(m.inflight, id)
			m.metrics.Records.Dec()
		}
	}
}

// lose counts v as lost for reason, once, if it had not yet expired.
func (m *Memory) lose(v *cached, reason string) {
	if v == nil || m.closing.Load() || !m.clock.Now().Before(v.rec.ExpiresAt) {
		return
	}
	if v.lost.CompareAndSwap(false, true) {
		m.metrics.Lost.WithLabelValues(reason).Inc()
	}
}

// gone updates the gauges when v leaves the cache.
func (m *Memory) gone(v *cached) {
	if v != nil && v.state.Swap(cachedGone) == cachedHeld {
		m.metrics.Records.Dec()
		m.metrics.Bytes.Sub(float64(v.cost))
	}
}
