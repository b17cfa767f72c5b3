package breaker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func BenchmarkAllowDoneClosed(b *testing.B) {
	br := New("api", Settings{}, NewMetrics(nil))
	b.ReportAllocs()
	for b.Loop() {
		done, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(Success)
	}
}

func BenchmarkAllowDoneClosedParallel(b *testing.B) {
	br := New("api", Settings{}, NewMetrics(nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done, err := br.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			done(Success)
		}
	})
}

func BenchmarkAllowRejectOpen(b *testing.B) {
	br := New("api", Settings{ConsecutiveFailures: 1, Clock: newFakeClock()}, NewMetrics(prometheus.NewRegistry()))
	done, _ := br.Allow()
	done(Failure)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Allow(); err == nil {
			b.Fatal("admitted while open")
		}
	}
}

func BenchmarkSetGet(b *testing.B) {
	s := NewSet(Settings{}, nil, 0)
	s.Get("api:80")
	b.ReportAllocs()
	for b.Loop() {
		s.Get("api:80")
	}
}

// TestAllocs guards the hot paths: admitting and reporting in closed costs
// the ticket and its done method value; a rejection reuses its error.
func TestAllocs(t *testing.T) {
	br := New("api", Settings{}, NewMetrics(nil))
	if n := testing.AllocsPerRun(1000, func() {
		done, _ := br.Allow()
		done(Success)
	}); n > 2 {
		t.Fatalf("Allow+done in closed: %v allocations, want at most 2", n)
	}
	open := New("api", Settings{ConsecutiveFailures: 1, Clock: newFakeClock()}, NewMetrics(nil))
	done, _ := open.Allow()
	done(Failure)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := open.Allow(); err == nil {
			t.Fatal("admitted while open")
		}
	}); n != 0 {
		t.Fatalf("rejection while open: %v allocations, want 0", n)
	}
}
