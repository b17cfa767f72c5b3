package breaker

import (
	"container/list"
	"sync"
)

// DefaultMaxBreakers is the bound of a Set when NewSet is given 0.
const DefaultMaxBreakers = 1024

// OverflowUpstream is the name of the breaker a full Set hands out.
const OverflowUpstream = "_overflow"

// SetObserver is an Observer that also hears when a Set reaches its bound.
// When the Observer given to NewSet implements it (Metrics does), the Set
// calls it; an Observer that wraps Metrics should forward these too, so
// per-upstream series are dropped with their breaker.
type SetObserver interface {
	Observer
	// Evicted: the closed breaker of upstream was dropped to make room.
	Evicted(upstream string)
	// Overflowed: the Set was full and no breaker could be dropped, so
	// upstream shares the overflow breaker.
	Overflowed(upstream string)
}

// Set keeps one Breaker per upstream name, at most max of them. When it is
// full, the least recently used closed breaker makes room (its counts are
// lost: it was closed); open and half-open breakers are never dropped, since
// that would readmit traffic to a failing upstream. When every breaker is
// open or half-open, Get returns one shared breaker named "_overflow" and
// the Set counts it. It is safe for concurrent use.
type Set struct {
	settings Settings
	obs      Observer
	setObs   SetObserver // obs, when it implements SetObserver
	max      int

	mu       sync.Mutex
	byName   map[string]*list.Element // of *Breaker
	lru      list.List                // front: most recently used
	overflow *Breaker
}

// NewSet returns an empty Set whose breakers use s and o. maxBreakers bounds the
// number of breakers; zero or negative: 1024.
func NewSet(s Settings, o Observer, maxBreakers int) *Set {
	if maxBreakers <= 0 {
		maxBreakers = DefaultMaxBreakers
	}
	set := &Set{settings: s, obs: o, max: maxBreakers, byName: make(map[string]*list.Element)}
	set.setObs, _ = o.(SetObserver)
	return set
}

// Get returns the breaker of upstream, creating it when needed.
func (s *Set) Get(upstream string) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byName[upstream]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*Breaker)
	}
	if len(s.byName) >= s.max && !s.evictLocked() {
		if s.overflow == nil {
			s.overflow = New(OverflowUpstream, s.settings, s.obs)
		}
		if s.setObs != nil {
			s.setObs.Overflowed(upstream)
		}
		return s.overflow
	}
	b := New(upstream, s.settings, s.obs)
	s.byName[upstream] = s.lru.PushFront(b)
	return b
}

// evictLocked drops the least recently used closed breaker and reports
// whether there was one.
func (s *Set) evictLocked() bool {
	for e := s.lru.Back(); e != nil; e = e.Prev() {
		b := e.Value.(*Breaker)
		if b.State() != StateClosed {
			continue
		}
		s.lru.Remove(e)
		delete(s.byName, b.upstream)
		if s.setObs != nil {
			s.setObs.Evicted(b.upstream)
		}
		return true
	}
	return false
}
