package breaker

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestTripsAfterExactlyNConsecutiveFailures(t *testing.T) {
	rec := &recorder{}
	b := New("api:80", Settings{ConsecutiveFailures: 3, FailureRatio: -1, Clock: newFakeClock(), Rand: noJitter}, rec)

	run(t, b, Failure)
	run(t, b, Failure)
	wantState(t, b, StateClosed) // N-1 failures
	run(t, b, Success)           // resets the run
	run(t, b, Failure)
	run(t, b, Failure)
	wantState(t, b, StateClosed)
	if c := counts(b); c != (Counts{Requests: 5, Failures: 4, ConsecutiveFailures: 2}) {
		t.Fatalf("counts before the trip = %+v", c)
	}
	run(t, b, Failure)
	wantState(t, b, StateOpen)

	tr := rec.last(t)
	want := Transition{
		Upstream: "api:80", From: StateClosed, To: StateOpen,
		Reason:  "3 consecutive failures",
		Counts:  Counts{Requests: 6, Failures: 5, ConsecutiveFailures: 3},
		OpenFor: DefaultOpenTimeout,
	}
	if tr != want {
		t.Fatalf("transition = %+v, want %+v", tr, want)
	}
	if len(rec.all()) != 1 {
		t.Fatalf("transitions = %+v, want exactly one", rec.all())
	}
}

func TestDefaultsTripAfterFiveFailures(t *testing.T) {
	b := New("api", Settings{Clock: newFakeClock()}, nil)
	for range 4 {
		run(t, b, Failure)
	}
	wantState(t, b, StateClosed)
	run(t, b, Failure)
	wantState(t, b, StateOpen)
}

// TestOpenSendsNothingUpstream drives a real HTTP upstream through a client
// loop that asks the breaker before every request.
func TestOpenSendsNothingUpstream(t *testing.T) {
	var hits atomic.Int64
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	clock := newFakeClock()
	rec := &recorder{}
	b := New(srv.Listener.Addr().String(), Settings{Clock: clock, Rand: noJitter}, rec)
	// call is the client: no request leaves unless the breaker admits it.
	call := func() error {
		done, err := b.Allow()
		if err != nil {
			return err
		}
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			done(Failure)
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			done(Failure)
		} else {
			done(Success)
		}
		return nil
	}

	for range 5 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	wantState(t, b, StateOpen)
	if n := hits.Load(); n != 5 {
		t.Fatalf("upstream saw %d requests before the trip, want 5", n)
	}

	for i := range 20 {
		err := call()
		var oe *OpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrOpen) {
			t.Fatalf("call %d while open: err = %v, want *OpenError wrapping ErrOpen", i, err)
		}
		if oe.State != StateOpen || oe.Reason != "5 consecutive failures" || oe.RetryAfter != 5*time.Second {
			t.Fatalf("OpenError = %+v", oe)
		}
	}
	if n := hits.Load(); n != 5 {
		t.Fatalf("upstream saw %d requests, want still 5 while open", n)
	}
	if n := rec.rejections(b.upstream); n != 20 {
		t.Fatalf("observer heard %d rejections, want 20", n)
	}

	// RetryAfter is the time left, rounded up to whole seconds, at least 1s.
	for _, step := range []struct {
		advance time.Duration
		want    time.Duration
	}{
		{2500 * time.Millisecond, 3 * time.Second}, // 2.5s left
		{500 * time.Millisecond, 2 * time.Second},  // 2s left
		{1999 * time.Millisecond, time.Second},     // 1ms left
	} {
		clock.Advance(step.advance)
		oe := rejected(t, b)
		if oe.RetryAfter != step.want {
			t.Fatalf("RetryAfter = %v, want %v", oe.RetryAfter, step.want)
		}
	}
	oe := rejected(t, b)
	if got, want := oe.Error(), "circuit open for "+b.upstream+": 5 consecutive failures; retry in 1s"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if n := hits.Load(); n != 5 {
		t.Fatalf("upstream saw %d requests, want still 5 while open", n)
	}

	// The period ends: the next call is a probe and reaches the upstream.
	clock.Advance(time.Millisecond)
	failing.Store(false)
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 6 {
		t.Fatalf("upstream saw %d requests, want 6 after the first probe", n)
	}
	wantState(t, b, StateHalfOpen)
	if err := call(); err != nil {
		t.Fatal(err)
	}
	wantState(t, b, StateClosed)
	if n := hits.Load(); n != 7 {
		t.Fatalf("upstream saw %d requests, want 7", n)
	}
}

func TestHalfOpenAdmitsOnlyProbes(t *testing.T) {
	clock := newFakeClock()
	rec := &recorder{}
	b := New("api", Settings{
		ConsecutiveFailures: 1, HalfOpenProbes: 2, SuccessesToClose: 3,
		OpenTimeout: time.Second, Clock: clock, Rand: noJitter,
	}, rec)
	run(t, b, Failure)
	wantState(t, b, StateOpen)
	clock.Advance(time.Second)
	wantState(t, b, StateOpen) // reading the state moves nothing

	p1 := admit(t, b)
	wantState(t, b, StateHalfOpen)
	if tr := rec.last(t); tr.From != StateOpen || tr.To != StateHalfOpen || tr.Reason != "open period of 1s elapsed" {
		t.Fatalf("transition = %+v", tr)
	}
	p2 := admit(t, b)
	for range 3 {
		oe := rejected(t, b)
		want := OpenError{Upstream: "api", State: StateHalfOpen, Reason: "half-open: probe in flight", RetryAfter: time.Second}
		if *oe != want {
			t.Fatalf("OpenError = %+v, want %+v", *oe, want)
		}
	}
	if n := rec.rejections("api"); n != 3 {
		t.Fatalf("rejections = %d, want 3", n)
	}

	p1(Success) // frees a slot
	if c := counts(b); c != (Counts{Requests: 1, ConsecutiveSuccesses: 1}) {
		t.Fatalf("half-open counts = %+v", c)
	}
	p3 := admit(t, b)
	rejected(t, b)
	p2(Success)
	wantState(t, b, StateHalfOpen)
	p3(Success)
	wantState(t, b, StateClosed)
	want := Transition{Upstream: "api", From: StateHalfOpen, To: StateClosed, Reason: "3 probes succeeded",
		Counts: Counts{Requests: 3, ConsecutiveSuccesses: 3}}
	if tr := rec.last(t); tr != want {
		t.Fatalf("transition = %+v, want %+v", tr, want)
	}
}

func TestReopenBacksOffAndClosingResets(t *testing.T) {
	clock := newFakeClock()
	rec := &recorder{}
	b := New("api", Settings{
		ConsecutiveFailures: 1, SuccessesToClose: 1,
		OpenTimeout: time.Second, MaxOpenTimeout: 5 * time.Second, Clock: clock, Rand: noJitter,
	}, rec)
	run(t, b, Failure)
	periods := []time.Duration{rec.last(t).OpenFor}
	for range 4 {
		clock.Advance(periods[len(periods)-1])
		run(t, b, Failure) // the probe fails: reopen
		tr := rec.last(t)
		if tr.From != StateHalfOpen || tr.To != StateOpen || tr.Reason != "probe failed" {
			t.Fatalf("transition = %+v", tr)
		}
		if oe := rejected(t, b); oe.Reason != "probe failed" || oe.RetryAfter != tr.OpenFor {
			t.Fatalf("OpenError = %+v, want RetryAfter %v", oe, tr.OpenFor)
		}
		periods = append(periods, tr.OpenFor)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !equalDurations(periods, want) {
		t.Fatalf("open periods = %v, want %v", periods, want)
	}

	// One period less a nanosecond is not enough.
	clock.Advance(5*time.Second - 1)
	rejected(t, b)
	clock.Advance(1)
	run(t, b, Success)
	wantState(t, b, StateClosed)
	run(t, b, Failure)
	if got := rec.last(t).OpenFor; got != time.Second {
		t.Fatalf("open period after closing = %v, want the first period again (1s)", got)
	}
}

func TestOpenPeriodJitter(t *testing.T) {
	for _, tc := range []struct {
		rand     float64
		reopens  int
		want     time.Duration
		maxOpen  time.Duration
		testName string
	}{
		{0, 0, 8 * time.Second, 0, "low end -20%"},
		{0.75, 0, 11 * time.Second, 0, "+10%"},
		{0.25, 1, 18 * time.Second, 0, "doubled, -10%"},
		{0.999, 2, 40 * time.Second, 40 * time.Second, "capped after jitter"},
		{0, 3, 32 * time.Second, 40 * time.Second, "cap, -20%"},
	} {
		t.Run(tc.testName, func(t *testing.T) {
			clock := newFakeClock()
			rec := &recorder{}
			b := New("api", Settings{
				ConsecutiveFailures: 1, OpenTimeout: 10 * time.Second, MaxOpenTimeout: tc.maxOpen,
				Clock: clock, Rand: func() float64 { return tc.rand },
			}, rec)
			run(t, b, Failure)
			for range tc.reopens {
				clock.Advance(rec.last(t).OpenFor)
				run(t, b, Failure)
			}
			if got := rec.last(t).OpenFor; got != tc.want {
				t.Fatalf("OpenFor = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRatioTripsAtMinRequests(t *testing.T) {
	rec := &recorder{}
	b := New("api", Settings{ConsecutiveFailures: -1, Clock: newFakeClock(), Rand: noJitter}, rec)
	for i := range 19 {
		if i%2 == 0 {
			run(t, b, Failure)
		} else {
			run(t, b, Success)
		}
	}
	wantState(t, b, StateClosed) // 10 of 19 failed, below MinRequests
	if c := counts(b); c.Requests != 19 || c.Failures != 10 {
		t.Fatalf("counts = %+v", c)
	}
	run(t, b, Success) // 10 of 20
	wantState(t, b, StateOpen)
	want := Transition{Upstream: "api", From: StateClosed, To: StateOpen,
		Reason:  "failure ratio 0.50 >= 0.50 over 20 requests in 10s",
		Counts:  Counts{Requests: 20, Failures: 10, ConsecutiveSuccesses: 1},
		OpenFor: DefaultOpenTimeout}
	if tr := rec.last(t); tr != want {
		t.Fatalf("transition = %+v, want %+v", tr, want)
	}
}

func TestRatioNeverTripsBelowMinRequests(t *testing.T) {
	b := New("api", Settings{ConsecutiveFailures: -1, MinRequests: 50, Clock: newFakeClock()}, nil)
	for range 49 {
		run(t, b, Failure)
	}
	wantState(t, b, StateClosed)
	if c := counts(b); c.Requests != 49 || c.Failures != 49 || c.ConsecutiveFailures != 49 {
		t.Fatalf("counts = %+v", c)
	}
	run(t, b, Failure)
	wantState(t, b, StateOpen)
}

func TestRatioWindowForgetsOldBuckets(t *testing.T) {
	clock := newFakeClock()
	b := New("api", Settings{ConsecutiveFailures: -1, Clock: clock}, nil)
	for range 10 {
		run(t, b, Failure) // bucket 0
	}
	clock.Advance(5 * time.Second)
	for range 9 {
		run(t, b, Success) // bucket 5
	}
	if c := counts(b); c.Requests != 19 || c.Failures != 10 {
		t.Fatalf("counts = %+v, want 19 requests, 10 failures", c)
	}
	// At 10s the window covers buckets 1..10: the ten failures fell out.
	// Were they still counted, this request would make 10 of 20 and trip.
	clock.Advance(5 * time.Second)
	run(t, b, Success)
	wantState(t, b, StateClosed)
	if c := counts(b); c.Requests != 10 || c.Failures != 0 {
		t.Fatalf("counts = %+v, want 10 requests, 0 failures", c)
	}
	// Long idle: everything falls out.
	clock.Advance(time.Hour)
	run(t, b, Failure)
	if c := counts(b); c.Requests != 1 || c.Failures != 1 {
		t.Fatalf("counts after an hour = %+v, want 1 request, 1 failure", c)
	}
	// A clock stepping back counts into the newest bucket.
	clock.Advance(-time.Minute)
	run(t, b, Failure)
	if c := counts(b); c.Requests != 2 || c.Failures != 2 {
		t.Fatalf("counts after the clock stepped back = %+v", c)
	}
}

func TestIgnoreChangesNothing(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		b := New("api", Settings{ConsecutiveFailures: 3, MinRequests: 4, Clock: newFakeClock()}, nil)
		run(t, b, Failure)
		run(t, b, Failure)
		for range 100 {
			run(t, b, Ignore) // 429s, client hang-ups
		}
		wantState(t, b, StateClosed)
		if c := counts(b); c != (Counts{Requests: 2, Failures: 2, ConsecutiveFailures: 2}) {
			t.Fatalf("counts = %+v", c)
		}
		run(t, b, Failure) // the run was not broken by the ignored ones
		wantState(t, b, StateOpen)
	})
	t.Run("half-open", func(t *testing.T) {
		clock := newFakeClock()
		rec := &recorder{}
		b := New("api", Settings{ConsecutiveFailures: 1, Clock: clock, Rand: noJitter}, rec)
		run(t, b, Failure)
		clock.Advance(DefaultOpenTimeout)
		for range 10 {
			p := admit(t, b)
			rejected(t, b) // the one probe slot is taken
			p(Ignore)      // and freed without deciding
		}
		wantState(t, b, StateHalfOpen)
		if c := counts(b); c != (Counts{}) {
			t.Fatalf("half-open counts = %+v, want none", c)
		}
		if n := len(rec.all()); n != 2 {
			t.Fatalf("transitions = %+v, want closed→open→half-open only", rec.all())
		}
	})
}

func TestStaleDoneDoesNotTouchNewState(t *testing.T) {
	clock := newFakeClock()
	b := New("api", Settings{ConsecutiveFailures: 2, HalfOpenProbes: 2, SuccessesToClose: 1, Clock: clock, Rand: noJitter}, nil)

	closedEarly := admit(t, b) // admitted while closed, ends much later
	run(t, b, Failure)
	run(t, b, Failure)
	wantState(t, b, StateOpen)
	closedEarly(Success)
	closedEarly(Success) // a second call: no-op

	// Half-open: two probes; the first fails and reopens.
	clock.Advance(DefaultOpenTimeout)
	a1, a2 := admit(t, b), admit(t, b)
	wantState(t, b, StateHalfOpen)
	a2(Failure)
	wantState(t, b, StateOpen)
	clock.Advance(2 * DefaultOpenTimeout)
	b1, b2 := admit(t, b), admit(t, b)
	wantState(t, b, StateHalfOpen)

	// a1 belongs to the previous half-open period: its success neither
	// closes this one (SuccessesToClose is 1) nor frees a probe slot.
	a1(Success)
	closedEarly(Failure)
	wantState(t, b, StateHalfOpen)
	if c := counts(b); c != (Counts{}) {
		t.Fatalf("half-open counts = %+v, want none", c)
	}
	rejected(t, b)

	b1(Success)
	wantState(t, b, StateClosed)
	b2(Failure) // admitted in half-open, reported after it closed
	b1(Failure) // a second call: no-op
	wantState(t, b, StateClosed)
	if c := counts(b); c != (Counts{}) {
		t.Fatalf("counts after closing = %+v, want none", c)
	}
	run(t, b, Failure)
	wantState(t, b, StateClosed) // one failure of two: the stale ones did not count
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDoneTwiceCountsOnce(t *testing.T) {
	clock := newFakeClock()
	b := New("api", Settings{ConsecutiveFailures: 3, HalfOpenProbes: 2, Clock: clock}, nil)
	done := admit(t, b)
	for range 3 {
		done(Failure)
	}
	wantState(t, b, StateClosed)
	if c := counts(b); c != (Counts{Requests: 1, Failures: 1, ConsecutiveFailures: 1}) {
		t.Fatalf("counts = %+v, want one failure", c)
	}

	run(t, b, Failure)
	run(t, b, Failure)
	clock.Advance(time.Minute)
	p := admit(t, b)
	p(Ignore)
	p(Ignore) // must not free a second slot
	admit(t, b)
	admit(t, b)
	rejected(t, b)
}
