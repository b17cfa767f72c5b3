package breaker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chainChecker is an Observer that checks every transition starts where
// the previous one ended, and counts them by target state.
type chainChecker struct {
	t        *testing.T
	mu       sync.Mutex
	last     State
	to       [3]int
	rejected atomic.Int64
}

func (c *chainChecker) Transition(tr Transition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr.From != c.last || tr.From == tr.To {
		c.t.Errorf("transition %v → %v after arriving in %v", tr.From, tr.To, c.last)
	}
	if tr.Counts.Requests < 0 || tr.Counts.Failures < 0 || tr.Counts.Failures > tr.Counts.Requests {
		c.t.Errorf("transition with counts %+v", tr.Counts)
	}
	c.last = tr.To
	c.to[tr.To]++
}

func (c *chainChecker) Rejected(string) { c.rejected.Add(1) }

// checkInvariants looks inside the breaker under its lock.
func checkInvariants(t *testing.T, b *Breaker, settled bool) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	st, _ := b.current()
	if b.probes < 0 || b.probes > b.s.HalfOpenProbes || (st != StateHalfOpen && b.probes != 0) {
		t.Errorf("%v with %d probes in flight (max %d)", st, b.probes, b.s.HalfOpenProbes)
	}
	if settled && b.probes != 0 {
		t.Errorf("%d probes in flight after every done was called", b.probes)
	}
	var req, fail int
	for _, bk := range b.win.b {
		req += bk.requests
		fail += bk.failures
	}
	if req != b.win.requests || fail != b.win.failures || fail > req {
		t.Errorf("window totals %d/%d, buckets sum to %d/%d", b.win.failures, b.win.requests, fail, req)
	}
}

func TestHammer(t *testing.T) {
	clock := newFakeClock()
	obs := &chainChecker{t: t}
	b := New("api", Settings{
		ConsecutiveFailures: 4, MinRequests: 10, HalfOpenProbes: 3, SuccessesToClose: 3,
		OpenTimeout: 100 * time.Millisecond, MaxOpenTimeout: time.Second, Window: time.Second, Clock: clock,
	}, obs)

	const workers, iterations = 8, 3000
	var admitted, rejectedN atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var held []func(Outcome) // reported late, after other traffic
			for i := range iterations {
				clock.Advance(time.Duration(rng.IntN(4)) * time.Millisecond)
				// Phases: a healthy upstream (5% failures), then a sick one (60%).
				failPct := 5
				if (i/500)%2 == 1 {
					failPct = 60
				}
				done, err := b.Allow()
				if err != nil {
					rejectedN.Add(1)
					done(Failure)
					continue
				}
				admitted.Add(1)
				o := Success
				switch r := rng.IntN(100); {
				case r < failPct:
					o = Failure
				case r >= 95:
					o = Ignore
				}
				switch rng.IntN(8) {
				case 0:
					held = append(held, done)
				case 1: // two goroutines race to report it
					var both sync.WaitGroup
					both.Add(2)
					go func() { defer both.Done(); done(o) }()
					go func() { defer both.Done(); done(Success) }()
					both.Wait()
				default:
					done(o)
				}
				if len(held) > 4 {
					held[0](Failure)
					held = held[1:]
				}
				if i%100 == 0 {
					checkInvariants(t, b, false)
				}
			}
			for _, d := range held {
				d(Success)
				d(Failure)
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, b, true)

	if got := admitted.Load() + rejectedN.Load(); got != workers*iterations {
		t.Fatalf("admitted+rejected = %d, want %d", got, workers*iterations)
	}
	if got, want := obs.rejected.Load(), rejectedN.Load(); got != want {
		t.Fatalf("observer heard %d rejections, callers got %d", got, want)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if b.State() != obs.last {
		t.Fatalf("state %v, last transition into %v", b.State(), obs.last)
	}
	for st, n := range obs.to {
		if n == 0 {
			t.Fatalf("no transition into %v: the hammer did not exercise the machine (%v)", State(st), obs.to)
		}
	}
	t.Logf("admitted %d, rejected %d, transitions into closed/open/half-open %v",
		admitted.Load(), rejectedN.Load(), obs.to)
}
