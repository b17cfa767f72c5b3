package breaker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// State is the state of a Breaker.
type State int32

// The states of a Breaker.
const (
	// StateClosed admits every request and counts outcomes.
	StateClosed State = iota
	// StateOpen rejects every request until its open period has elapsed.
	StateOpen
	// StateHalfOpen admits a bounded number of probe requests to decide
	// between closing and opening again.
	StateHalfOpen
)

// String is "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	default:
		return "state(" + strconv.Itoa(int(s)) + ")"
	}
}

// Outcome is what a caller reports about one admitted request.
type Outcome int

// The outcomes of an admitted request.
const (
	// Success: the upstream answered acceptably.
	Success Outcome = iota
	// Failure: the upstream could not be reached, timed out, or answered
	// with a status the caller counts as failure.
	Failure
	// Ignore: the request says nothing about the upstream (the client hung
	// up, 429). It is not counted at all; in half-open it frees its probe
	// slot without deciding anything.
	Ignore
)

// Clock tells the time. A nil Clock in Settings is the real clock.
type Clock interface{ Now() time.Time }

// Defaults applied by New to zero Settings fields.
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRatio        = 0.5
	DefaultMinRequests         = 20
	DefaultWindow              = 10 * time.Second
	DefaultHalfOpenProbes      = 1
	DefaultSuccessesToClose    = 2
	DefaultOpenTimeout         = 5 * time.Second
	DefaultMaxOpenTimeout      = 60 * time.Second
)

// buckets is the number of buckets the rolling window is divided into.
const buckets = 10

// jitter is the spread of every open period: ±20%.
const jitter = 0.2

// Settings configure a Breaker. Zero values mean the documented defaults.
type Settings struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row while closed (a success resets the run). Zero: 5; negative: this
	// rule is off.
	ConsecutiveFailures int
	// FailureRatio trips the breaker when failures/requests within Window
	// reach it, once at least MinRequests were counted there. Zero: 0.5;
	// negative: this rule is off.
	FailureRatio float64
	// MinRequests is the number of counted requests within Window below
	// which the ratio rule does not apply. Zero or negative: 20.
	MinRequests int
	// Window is the span of the rolling window for the ratio rule, kept in
	// 10 buckets of Window/10 each. Zero or negative: 10s.
	Window time.Duration
	// HalfOpenProbes is how many probe requests half-open admits at once.
	// Zero or negative: 1.
	HalfOpenProbes int
	// SuccessesToClose is how many consecutive probe successes close the
	// breaker from half-open. Zero or negative: 2.
	SuccessesToClose int
	// OpenTimeout is the first open period. Zero or negative: 5s.
	OpenTimeout time.Duration
	// MaxOpenTimeout caps the open period, which doubles with every
	// consecutive reopen from half-open. Zero or negative: 60s; it is
	// never less than OpenTimeout.
	MaxOpenTimeout time.Duration
	// Clock tells the time. Nil: the real clock.
	Clock Clock
	// Rand returns a number in [0, 1) that spreads each open period by
	// ±20%. Nil: math/rand/v2.Float64.
	Rand func() float64
}

func (s Settings) withDefaults() Settings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = DefaultFailureRatio
	}
	if s.MinRequests <= 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.Window <= 0 {
		s.Window = DefaultWindow
	}
	if s.HalfOpenProbes <= 0 {
		s.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if s.SuccessesToClose <= 0 {
		s.SuccessesToClose = DefaultSuccessesToClose
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = DefaultOpenTimeout
	}
	if s.MaxOpenTimeout <= 0 {
		s.MaxOpenTimeout = DefaultMaxOpenTimeout
	}
	s.MaxOpenTimeout = max(s.MaxOpenTimeout, s.OpenTimeout)
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	return s
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Counts are the outcomes behind a state: in closed, Requests and Failures
// are those within the rolling window; in half-open, those of the probes.
// Only completed, counted requests are included (not Ignore, not in flight).
type Counts struct {
	Requests, Failures, ConsecutiveFailures, ConsecutiveSuccesses int
}

// Transition is one change of state, as an Observer hears it.
type Transition struct {
	Upstream string
	From, To State
	// Reason says why, e.g. "5 consecutive failures", "probe failed",
	// "2 probes succeeded", "open period of 5s elapsed".
	Reason string
	// Counts are those of the state being left.
	Counts Counts
	// OpenFor is the open period that starts, when To is StateOpen.
	OpenFor time.Duration
}

// Observer hears about transitions and rejections. It is called with the
// breaker's lock held (so transitions arrive in order) and must not call
// back into the Breaker. A nil Observer is allowed.
type Observer interface {
	Transition(Transition)
	Rejected(upstream string)
}

// ErrOpen is the sentinel every rejection wraps.
var ErrOpen = errors.New("circuit open")

// OpenError is a rejection by an open or half-open breaker. The same value
// may be returned to several callers: treat it as read-only.
type OpenError struct {
	Upstream string
	State    State
	// Reason says why the breaker opened, or "half-open: probe in flight".
	Reason string
	// RetryAfter is the time left in the open period, rounded up to whole
	// seconds, at least 1s.
	RetryAfter time.Duration
}

// Error is "circuit open for <upstream>: <reason>; retry in 4s".
func (e *OpenError) Error() string {
	return "circuit open for " + e.Upstream + ": " + e.Reason +
		"; retry in " + strconv.FormatInt(int64(e.RetryAfter/time.Second), 10) + "s"
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

const reasonProbeInFlight = "half-open: probe in flight"

// Breaker guards one upstream. It is safe for concurrent use.
type Breaker struct {
	upstream string
	s        Settings
	obs      Observer
	width    time.Duration // width of one bucket of the rolling window

	// stateGen packs the generation (upper bits) and the state (low 2
	// bits), so the closed fast path of Allow needs no lock. It is written
	// only with mu held.
	stateGen atomic.Uint64

	mu        sync.Mutex
	counts    Counts    // of the current generation
	win       window    // closed only
	origin    time.Time // start of slot 0 of win
	probes    int       // half-open: probes admitted and not yet done
	reopens   int       // consecutive half-open → open transitions
	reason    string    // why it opened (open only)
	openFor   time.Duration
	openUntil time.Time
	rejection *OpenError // last rejection of this generation, reused
	rejGen    uint64     // generation of rejection
	last      Transition // the most recent transition
}

// New returns a closed Breaker for upstream. o may be nil.
func New(upstream string, s Settings, o Observer) *Breaker {
	s = s.withDefaults()
	b := &Breaker{upstream: upstream, s: s, obs: o, width: max(s.Window/buckets, 1)}
	b.origin = s.Clock.Now()
	return b
}

// State is the state the breaker is in. Reading it changes nothing: an open
// breaker whose period has elapsed reports open until the next Allow.
func (b *Breaker) State() State {
	st, _ := unpack(b.stateGen.Load())
	return st
}

func pack(st State, gen uint64) uint64 {
	return gen<<2 | uint64(st) //nolint:gosec // st is one of the three states, 0..2
}

func unpack(v uint64) (State, uint64) { return State(v & 3), v >> 2 }

func (b *Breaker) current() (State, uint64) { return unpack(b.stateGen.Load()) }

// nop is the done of a rejected request.
func nop(Outcome) {}

// Allow asks to send one request. When admitted, err is nil and done must
// be called with the request's Outcome when it ends (a stream: when the
// stream ends); calls after the first do nothing, and a done from before a
// change of state is not counted in the new one. When rejected, err is an
// *OpenError wrapping ErrOpen, nothing may be sent, and done does nothing.
func (b *Breaker) Allow() (done func(Outcome), err error) {
	if st, gen := b.current(); st == StateClosed {
		return (&ticket{b: b, gen: gen}).done, nil
	}
	b.mu.Lock()
	st, gen := b.current()
	if st == StateOpen {
		if now := b.s.Clock.Now(); !now.Before(b.openUntil) {
			b.transition(StateHalfOpen, "open period of "+b.openFor.Round(time.Millisecond).String()+" elapsed", now)
			st, gen = b.current()
		}
	}
	switch {
	case st == StateClosed:
		b.mu.Unlock()
		return (&ticket{b: b, gen: gen}).done, nil
	case st == StateHalfOpen && b.probes < b.s.HalfOpenProbes:
		b.probes++
		b.mu.Unlock()
		return (&ticket{b: b, gen: gen}).done, nil
	}
	e := b.rejectionLocked(st, gen)
	b.mu.Unlock()
	if b.obs != nil {
		b.obs.Rejected(b.upstream)
	}
	return nop, e
}

// rejectionLocked returns the error for a rejection now, reusing the last
// one while nothing it says has changed (state, reason, whole seconds left).
func (b *Breaker) rejectionLocked(st State, gen uint64) *OpenError {
	reason, retry := reasonProbeInFlight, time.Second
	if st == StateOpen {
		reason = b.reason
		left := b.openUntil.Sub(b.s.Clock.Now())
		retry = max(time.Second, (left+time.Second-1)/time.Second*time.Second)
	}
	if e := b.rejection; e != nil && b.rejGen == gen && e.RetryAfter == retry {
		return e
	}
	b.rejection = &OpenError{Upstream: b.upstream, State: st, Reason: reason, RetryAfter: retry}
	b.rejGen = gen
	return b.rejection
}

// ticket is one admitted request.
type ticket struct {
	b    *Breaker
	gen  uint64
	used atomic.Bool
}

func (t *ticket) done(o Outcome) {
	if !t.used.Swap(true) {
		t.b.done(t.gen, o)
	}
}

func (b *Breaker) done(gen uint64, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, cur := b.current()
	if gen != cur {
		return // admitted under an earlier state: says nothing about this one
	}
	switch st {
	case StateClosed:
		if o != Ignore {
			b.onClosed(o == Failure, b.s.Clock.Now())
		}
	case StateHalfOpen:
		b.probes--
		switch o {
		case Success:
			b.counts.Requests++
			b.counts.ConsecutiveSuccesses++
			if b.counts.ConsecutiveSuccesses >= b.s.SuccessesToClose {
				b.transition(StateClosed, strconv.Itoa(b.counts.ConsecutiveSuccesses)+" probes succeeded", b.s.Clock.Now())
			}
		case Failure:
			b.counts.Requests++
			b.counts.Failures++
			b.counts.ConsecutiveFailures++
			b.reopens++
			b.transition(StateOpen, "probe failed", b.s.Clock.Now())
		}
	}
}

// onClosed counts one outcome in closed and trips when a rule says so.
func (b *Breaker) onClosed(failed bool, now time.Time) {
	b.win.add(int64(now.Sub(b.origin)/b.width), failed)
	c := &b.counts
	c.Requests, c.Failures = b.win.requests, b.win.failures
	if failed {
		c.ConsecutiveFailures++
		c.ConsecutiveSuccesses = 0
	} else {
		c.ConsecutiveSuccesses++
		c.ConsecutiveFailures = 0
	}
	switch n := b.s.ConsecutiveFailures; {
	case n > 0 && c.ConsecutiveFailures >= n:
		b.transition(StateOpen, strconv.Itoa(c.ConsecutiveFailures)+" consecutive failures", now)
	case b.s.FailureRatio > 0 && c.Requests >= b.s.MinRequests &&
		float64(c.Failures) >= b.s.FailureRatio*float64(c.Requests):
		b.transition(StateOpen, fmt.Sprintf("failure ratio %.2f >= %.2f over %d requests in %s",
			float64(c.Failures)/float64(c.Requests), b.s.FailureRatio, c.Requests, b.s.Window), now)
	}
}

// transition moves to state to, starting a new generation, and tells the
// Observer. mu must be held.
func (b *Breaker) transition(to State, reason string, now time.Time) {
	from, gen := b.current()
	t := Transition{Upstream: b.upstream, From: from, To: to, Reason: reason, Counts: b.counts}
	b.counts, b.win, b.probes = Counts{}, window{}, 0
	switch to {
	case StateOpen:
		b.reason = reason
		b.openFor = b.backoff()
		b.openUntil = now.Add(b.openFor)
		t.OpenFor = b.openFor
	case StateClosed:
		b.reopens = 0 // closing resets the backoff
		// The window starts afresh: buckets are counted from now.
		b.origin = now
	}
	b.stateGen.Store(pack(to, gen+1))
	b.last = t
	if b.obs != nil {
		b.obs.Transition(t)
	}
}

// LastTransition is the breaker's most recent state change (zero before the
// first), for a caller that saw the state change and wants its reason.
func (b *Breaker) LastTransition() Transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// backoff is the next open period: OpenTimeout doubled per consecutive
// reopen, spread by ±20%, never above MaxOpenTimeout.
func (b *Breaker) backoff() time.Duration {
	d := b.s.OpenTimeout
	for i := 0; i < b.reopens && d < b.s.MaxOpenTimeout; i++ {
		d *= 2
	}
	d = time.Duration(float64(min(d, b.s.MaxOpenTimeout)) * (1 - jitter + 2*jitter*b.s.Rand()))
	return max(min(d, b.s.MaxOpenTimeout), time.Millisecond)
}

// window is the rolling window of the ratio rule: counts in buckets, each
// covering one slot of Window/10; slots older than the last 10 fall out.
type window struct {
	head               int64 // newest slot counted
	requests, failures int
	b                  [buckets]struct{ requests, failures int }
}

func (w *window) add(slot int64, failed bool) {
	if slot > w.head {
		// Empty the buckets of the slots that fall out.
		for s := w.head + 1; s <= min(slot, w.head+buckets); s++ {
			old := &w.b[s%buckets]
			w.requests -= old.requests
			w.failures -= old.failures
			*old = struct{ requests, failures int }{}
		}
		w.head = slot
	}
	// A clock that stepped back counts into the newest bucket.
	cur := &w.b[w.head%buckets]
	cur.requests++
	w.requests++
	if failed {
		cur.failures++
		w.failures++
	}
}
