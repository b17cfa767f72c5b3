package dedupe

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRedisUnavailable(t *testing.T) {
	t.Run("server stopped", func(t *testing.T) {
		srv := startRedis(t)
		met := NewMetrics(prometheus.NewRegistry())
		s := NewRedis(srv.Client(t), RedisSettings{Clock: newFakeClock()}, met)
		c := mustClaim(t, s, testScope, time.Minute)
		srv.Stop()
		checkUnavailable(t, s, c)
		if got := testutil.ToFloat64(met.Errors); got != 3 {
			t.Errorf("errors_total = %v, want 3", got)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		s := NewRedis(testClient(t, "127.0.0.1:"+strconv.Itoa(freePort(t))), RedisSettings{}, nil)
		checkUnavailable(t, s, &Claim{Scope: testScope, Owner: "x"})
	})
}

// checkUnavailable asserts all three operations fail with ErrStoreUnavailable
// on their own, well before the 5s context deadline.
func checkUnavailable(t *testing.T, s Store, c *Claim) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, claimErr := s.Claim(ctx, Scope{Principal: "p", Key: "new"}, testFP, time.Minute)
	completeErr := s.Complete(ctx, c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour)
	releaseErr := s.Release(ctx, c)
	for op, err := range map[string]error{"Claim": claimErr, "Complete": completeErr, "Release": releaseErr} {
		if !errors.Is(err, ErrStoreUnavailable) {
			t.Errorf("%s: %v, want ErrStoreUnavailable", op, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s waited for the caller's deadline instead of failing fast: %v", op, err)
		}
	}
}

// Research §8 item 26: two sidecars on one Redis share claims and records.
func TestRedisInstancesShareClaims(t *testing.T) {
	srv := startRedis(t)
	clk := newFakeClock()
	a := NewRedis(srv.Client(t), RedisSettings{Clock: clk}, nil)
	b := NewRedis(srv.Client(t), RedisSettings{Clock: clk}, nil)
	ctx := context.Background()

	// Racing claims across both instances: one winner in total.
	const n = 16
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		winners []*Claim
	)
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, rec, err := s.Claim(ctx, testScope, testFP, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("Claim: %v", err)
			case c != nil:
				winners = append(winners, c)
			case rec.State != StateInProgress:
				t.Errorf("loser saw %s", rec.State)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d winners across two instances, want 1", len(winners))
	}
	mustFind(t, a, testScope, StateInProgress)
	mustFind(t, b, testScope, StateInProgress)

	// Completed on one, replayed from the other.
	want := sampleResponse()
	if err := a.Complete(ctx, winners[0], &Record{State: StateCompleted, Response: want}, time.Hour); err != nil {
		t.Fatal(err)
	}
	rec := mustFind(t, b, testScope, StateCompleted)
	if rec.Response.Status != want.Status || !bytes.Equal(rec.Response.Body, want.Body) {
		t.Fatalf("instance B replays %+v, want %+v", rec.Response, want)
	}

	// A claim on B is seen by A, and only B's owner can release it.
	other := Scope{Principal: "p", Method: "POST", Route: "/r", Key: "k2"}
	cb := mustClaim(t, b, other, time.Minute)
	mustFind(t, a, other, StateInProgress)
	if err := a.Release(ctx, cb); err != nil {
		t.Fatalf("owner token works on any instance: %v", err)
	}
	mustClaim(t, a, other, time.Minute)
}

func TestRedisTTLsFollowLeaseAndRetention(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	s := NewRedis(client, RedisSettings{Prefix: "test:"}, nil)
	ctx := context.Background()
	key := "test:" + testScope.ID()

	c := mustClaim(t, s, testScope, 30*time.Second)
	ttl, err := client.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > 30*time.Second {
		t.Fatalf("PTTL after claim = %v, %v; want (0, 30s]", ttl, err)
	}
	if err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
		t.Fatal(err)
	}
	ttl, err = client.PTTL(ctx, key).Result()
	if err != nil || ttl <= 30*time.Second || ttl > time.Hour {
		t.Fatalf("PTTL after complete = %v, %v; want (30s, 1h]", ttl, err)
	}
	if n, err := client.Exists(ctx, DefaultRedisPrefix+testScope.ID()).Result(); err != nil || n != 0 {
		t.Fatalf("default prefix used despite Prefix setting: %d %v", n, err)
	}

	// Release deletes the key.
	c2 := mustClaim(t, s, Scope{Key: "k2"}, time.Minute)
	if err := s.Release(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Exists(ctx, "test:"+(Scope{Key: "k2"}).ID()).Result(); err != nil || n != 0 {
		t.Fatalf("released key still exists: %d %v", n, err)
	}
}

func TestRedisCorruptRecord(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	s := NewRedis(client, RedisSettings{}, nil)
	ctx := context.Background()
	if err := client.Set(ctx, DefaultRedisPrefix+testScope.ID(), "not a record", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Claim(ctx, testScope, testFP, time.Minute)
	if !errors.Is(err, ErrStoreUnavailable) || !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("Claim on a corrupt record: %v", err)
	}
}
