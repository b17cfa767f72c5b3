package dedupe

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func BenchmarkParseKey(b *testing.B) {
	for _, bc := range []struct{ name, v string }{
		{"bare", "8e03978e-40d5-43e8-bc93-6894a57f9324"},
		{"sf-string", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			values := []string{bc.v}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseKey(values); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestHotPathAllocations(t *testing.T) {
	for _, v := range []string{"8e03978e-40d5-43e8-bc93-6894a57f9324", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`} {
		values := []string{v}
		if n := testing.AllocsPerRun(100, func() { _, _ = ParseKey(values) }); n != 0 {
			t.Errorf("ParseKey(%s): %v allocations, want 0", v, n)
		}
	}
	h := NewHasher()
	body := make([]byte, 100)
	if n := testing.AllocsPerRun(100, func() {
		h.Reset()
		h.Field("method", "POST")
		_, _ = h.Write(body)
		_ = h.Sum()
	}); n != 0 {
		t.Errorf("reused Hasher: %v allocations, want 0", n)
	}
}

func BenchmarkHasher(b *testing.B) {
	body := make([]byte, 1024)
	h := NewHasher()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		h.Reset()
		h.Field("method", "POST")
		h.Field("target", "/v1/orders?expand=items")
		h.Field("Content-Type", "application/json")
		_, _ = h.Write(body)
		_ = h.Sum()
	}
}

func BenchmarkScopeID(b *testing.B) {
	s := Scope{Principal: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Method: "POST", Route: "/v1/orders", Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.ID()
	}
}

func benchClaimComplete(b *testing.B, s Store) {
	ctx := context.Background()
	resp := &Response{Status: 201, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: make([]byte, 512)}
	scope := Scope{Principal: "9f86d081884c", Method: "POST", Route: "/v1/orders"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		scope.Key = strconv.Itoa(i)
		c, _, err := s.Claim(ctx, scope, testFP, time.Minute)
		if err != nil || c == nil {
			b.Fatalf("Claim: %v %v", c, err)
		}
		if err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: resp}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryClaimComplete(b *testing.B) {
	m, err := NewMemory(MemorySettings{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	benchClaimComplete(b, m)
}

func BenchmarkRedisClaimComplete(b *testing.B) {
	srv := startRedis(b)
	benchClaimComplete(b, NewRedis(srv.Client(b), RedisSettings{}, nil))
}

// BenchmarkMemoryReplay is the retry fast path: Claim finds the completed record.
func BenchmarkMemoryReplay(b *testing.B) {
	m, err := NewMemory(MemorySettings{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	c, _, err := m.Claim(ctx, testScope, testFP, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Complete(ctx, c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, rec, err := m.Claim(ctx, testScope, testFP, time.Minute); err != nil || rec == nil {
			b.Fatal("no replay")
		}
	}
}
