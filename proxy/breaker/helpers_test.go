package breaker

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

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

// noJitter makes every open period exactly its nominal length.
func noJitter() float64 { return 0.5 }

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu          sync.Mutex
	transitions []Transition
	rejected    map[string]int
	evicted     []string
	overflowed  []string
}

func (r *recorder) Transition(t Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitions = append(r.transitions, t)
}

func (r *recorder) Rejected(upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = make(map[string]int)
	}
	r.rejected[upstream]++
}

func (r *recorder) Evicted(upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evicted = append(r.evicted, upstream)
}

func (r *recorder) Overflowed(upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overflowed = append(r.overflowed, upstream)
}

func (r *recorder) all() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Transition(nil), r.transitions...)
}

func (r *recorder) last(t *testing.T) Transition {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("no transition observed")
	}
	return all[len(all)-1]
}

func (r *recorder) rejections(upstream string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected[upstream]
}

// counts reads the breaker's counts of its current state.
func counts(b *Breaker) Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.counts
}

// admit calls Allow and fails the test when it rejects.
func admit(t *testing.T, b *Breaker) func(Outcome) {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("Allow in state %v: %v", b.State(), err)
	}
	return done
}

// run admits one request and reports o at once.
func run(t *testing.T, b *Breaker, o Outcome) {
	t.Helper()
	admit(t, b)(o)
}

// rejected calls Allow and fails the test unless it rejects; it returns
// the *OpenError.
func rejected(t *testing.T, b *Breaker) *OpenError {
	t.Helper()
	done, err := b.Allow()
	if err == nil {
		done(Ignore)
		t.Fatalf("Allow in state %v admitted, want rejection", b.State())
	}
	oe, ok := err.(*OpenError)
	if !ok {
		t.Fatalf("Allow error is %T (%v), want *OpenError", err, err)
	}
	done(Failure) // a rejection's done does nothing
	return oe
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %v, want %v", got, want)
	}
}
