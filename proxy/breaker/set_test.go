package breaker

import (
	"slices"
	"testing"
)

func TestSetSameBreakerPerName(t *testing.T) {
	s := NewSet(Settings{}, nil, 0)
	a := s.Get("a:80")
	if s.Get("a:80") != a {
		t.Fatal("Get returned a different breaker for the same name")
	}
	if b := s.Get("b:80"); b == a || b.upstream != "b:80" {
		t.Fatalf("Get(b:80) = %q, want its own breaker", b.upstream)
	}
	if s.max != DefaultMaxBreakers {
		t.Fatalf("max = %d, want the default %d", s.max, DefaultMaxBreakers)
	}
}

func TestSetEvictsLeastRecentlyUsedClosed(t *testing.T) {
	rec := &recorder{}
	s := NewSet(Settings{ConsecutiveFailures: 1, Clock: newFakeClock()}, rec, 3)
	a, b, c := s.Get("a"), s.Get("b"), s.Get("c")
	run(t, a, Failure) // a is open: never evicted
	s.Get("b")         // b is now more recent than c
	d := s.Get("d")    // full: c, the least recently used closed one, goes
	if !slices.Equal(rec.evicted, []string{"c"}) {
		t.Fatalf("evicted = %v, want [c]", rec.evicted)
	}
	if s.Get("a") != a || s.Get("b") != b || s.Get("d") != d {
		t.Fatal("a breaker other than c was replaced")
	}
	if s.Get("c") == c {
		t.Fatal("c was not evicted")
	}
	// c's return evicted the least recently used closed one: b (a is open).
	if !slices.Equal(rec.evicted, []string{"c", "b"}) {
		t.Fatalf("evicted = %v, want [c b]", rec.evicted)
	}
	if len(s.byName) != 3 || s.lru.Len() != 3 {
		t.Fatalf("set holds %d/%d breakers, want 3", len(s.byName), s.lru.Len())
	}
}

func TestSetOverflowWhenAllOpen(t *testing.T) {
	rec := &recorder{}
	s := NewSet(Settings{ConsecutiveFailures: 1, Clock: newFakeClock()}, rec, 2)
	a, b := s.Get("a"), s.Get("b")
	run(t, a, Failure)
	run(t, b, Failure)

	o := s.Get("c")
	if o.upstream != OverflowUpstream {
		t.Fatalf("Get(c) on a full set of open breakers = %q, want %q", o.upstream, OverflowUpstream)
	}
	if s.Get("d") != o {
		t.Fatal("a second overflowing name got a different breaker")
	}
	if !slices.Equal(rec.overflowed, []string{"c", "d"}) || len(rec.evicted) != 0 {
		t.Fatalf("overflowed = %v, evicted = %v; want [c d] and none", rec.overflowed, rec.evicted)
	}
	if s.Get("a") != a || s.Get("b") != b {
		t.Fatal("an open breaker was replaced")
	}
	// The overflow breaker is a breaker like any other, shared.
	run(t, o, Failure)
	wantState(t, s.Get("e"), StateOpen)
}
