package stitch

import (
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by New to zero Settings fields.
const (
	// DefaultMaxEntries holds every in-flight request of a busy sidecar and
	// the finished ones of the last TTL up to about 135 requests a second;
	// at about 350 bytes an entry it is 1.4 MiB when full.
	DefaultMaxEntries = 4096
	DefaultTTL        = 30 * time.Second
)

// Entry is what the registry remembers of one inbound request.
type Entry struct {
	// SpanContext is the inbound request's SERVER span: the parent of the
	// outbound calls stitched to it.
	SpanContext trace.SpanContext
	// CorrelationID is the inbound request's correlation ID (the caller's, or
	// the one tracecar minted). Empty: found only by Sole.
	CorrelationID string
}

// Clock tells the time; tests pass a fake one.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Settings configure a Registry. Zero values mean the documented defaults.
type Settings struct {
	// MaxEntries bounds the entries remembered, in flight and finished.
	// Zero or negative: DefaultMaxEntries (4096).
	MaxEntries int
	// TTL is how long a finished request stays findable after its end.
	// Zero: DefaultTTL (30s); negative: finished requests are forgotten at
	// once.
	TTL time.Duration
	// Clock is the time source. Nil: the real clock.
	Clock Clock
}

// Registry remembers in-flight and recently finished inbound requests by
// correlation ID. It is safe for concurrent use; every method takes one
// short lock.
type Registry struct {
	max     int
	ttl     time.Duration
	clock   Clock
	metrics *Metrics

	mu       sync.Mutex
	inFlight int                       // Begin calls not yet ended, stored or not
	active   list                      // stored entries in flight, oldest first
	finished list                      // stored entries finished, in end order (oldest first)
	byID     map[string]*record        // newest entry per correlation ID
	byTrace  map[trace.TraceID]*record // newest entry per trace ID
}

// record is one remembered request. It sits in exactly one of the active and
// finished lists while stored, and in the chain of entries sharing its
// correlation ID (newest first).
type record struct {
	reg        *Registry
	entry      Entry
	finishedAt time.Time
	stored     bool // linked into the registry
	finished   bool // end has been called
	prev, next *record
	older      *record // same correlation ID, begun earlier
	newer      *record // same correlation ID, begun later
}

// New returns an empty registry. m may be nil (no metrics).
func New(s Settings, m *Metrics) *Registry {
	if s.MaxEntries <= 0 {
		s.MaxEntries = DefaultMaxEntries
	}
	if s.TTL == 0 {
		s.TTL = DefaultTTL
	}
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	return &Registry{
		max:     s.MaxEntries,
		ttl:     s.TTL,
		clock:   s.Clock,
		metrics: m,
		byID:    make(map[string]*record),
		byTrace: make(map[trace.TraceID]*record),
	}
}

// Begin registers an in-flight inbound request. The returned end marks it
// finished; it is then kept for the TTL. end must be called once when the
// response is done (further calls do nothing).
//
// When the registry is full, the oldest finished entry makes room; when
// every entry is in flight, e is not remembered (it still counts as in
// flight for Sole) and tracecar_stitch_full_total is incremented.
func (r *Registry) Begin(e Entry) (end func()) {
	rec := &record{reg: r, entry: e}
	r.mu.Lock()
	r.inFlight++
	r.sweep(r.clock.Now())
	if r.active.n+r.finished.n >= r.max {
		if r.finished.head == nil {
			r.mu.Unlock()
			r.metrics.fullInc()
			return rec.end
		}
		r.remove(r.finished.head)
	}
	rec.stored = true
	r.active.pushBack(rec)
	if id := e.CorrelationID; id != "" {
		if newest := r.byID[id]; newest != nil {
			newest.newer = rec
			rec.older = newest
		}
		r.byID[id] = rec
	}
	if e.SpanContext.IsValid() {
		r.byTrace[e.SpanContext.TraceID()] = rec
	}
	n := r.active.n + r.finished.n
	r.mu.Unlock()
	r.metrics.setEntries(n)
	return rec.end
}

// end marks the record finished and starts its TTL.
func (rec *record) end() {
	r := rec.reg
	r.mu.Lock()
	if rec.finished {
		r.mu.Unlock()
		return
	}
	rec.finished = true
	r.inFlight--
	now := r.clock.Now()
	if rec.stored {
		r.active.remove(rec)
		rec.finishedAt = now
		r.finished.pushBack(rec)
	}
	r.sweep(now)
	n := r.active.n + r.finished.n
	r.mu.Unlock()
	r.metrics.setEntries(n)
}

// Lookup returns the inbound request with this correlation ID: in flight, or
// finished less than the TTL ago (measured from that entry's own end). Of
// several, the most recently begun wins.
func (r *Registry) Lookup(correlationID string) (Entry, bool) {
	if correlationID == "" {
		r.metrics.lookup(false)
		return Entry{}, false
	}
	r.mu.Lock()
	now := r.clock.Now()
	for rec := r.byID[correlationID]; rec != nil; rec = rec.older {
		if !rec.finished || now.Sub(rec.finishedAt) < r.ttl {
			e := rec.entry
			r.mu.Unlock()
			r.metrics.lookup(true)
			return e, true
		}
	}
	r.mu.Unlock()
	r.metrics.lookup(false)
	return Entry{}, false
}

// LookupTrace returns the inbound request of this trace, in flight or
// finished less than the TTL ago: an outbound call that carries the app's
// traceparent but not the correlation ID gets the ID back this way.
func (r *Registry) LookupTrace(id trace.TraceID) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.byTrace[id]
	if rec == nil || (rec.finished && r.clock.Now().Sub(rec.finishedAt) >= r.ttl) {
		return Entry{}, false
	}
	return rec.entry, true
}

// Sole returns the inbound request in flight when it is the only one (for
// serial inference); false when none or several are in flight.
func (r *Registry) Sole() (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight != 1 || r.active.n != 1 {
		return Entry{}, false
	}
	return r.active.head.entry, true
}

// sweep forgets finished entries whose TTL has run out. The finished list is
// in end order, so they are at its front.
func (r *Registry) sweep(now time.Time) {
	for rec := r.finished.head; rec != nil && now.Sub(rec.finishedAt) >= r.ttl; rec = r.finished.head {
		r.remove(rec)
	}
}

// remove unlinks a finished record from the registry.
func (r *Registry) remove(rec *record) {
	r.finished.remove(rec)
	rec.stored = false
	if tid := rec.entry.SpanContext.TraceID(); r.byTrace[tid] == rec {
		delete(r.byTrace, tid)
	}
	if rec.newer != nil {
		rec.newer.older = rec.older
	} else if id := rec.entry.CorrelationID; id != "" {
		if rec.older != nil {
			r.byID[id] = rec.older
		} else {
			delete(r.byID, id)
		}
	}
	if rec.older != nil {
		rec.older.newer = rec.newer
	}
	rec.older, rec.newer = nil, nil
}

// list is an intrusive doubly linked list of records.
type list struct {
	head, tail *record
	n          int
}

func (l *list) pushBack(rec *record) {
	rec.prev, rec.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = rec
	} else {
		l.head = rec
	}
	l.tail = rec
	l.n++
}

func (l *list) remove(rec *record) {
	if rec.prev != nil {
		rec.prev.next = rec.next
	} else {
		l.head = rec.next
	}
	if rec.next != nil {
		rec.next.prev = rec.prev
	} else {
		l.tail = rec.prev
	}
	rec.prev, rec.next = nil, nil
	l.n--
}
