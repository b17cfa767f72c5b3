package dedupe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeFactory builds a fresh, empty store for one test.
type storeFactory struct {
	name string
	new  func(t *testing.T, clk Clock, m *Metrics) Store
}

func storeFactories() []storeFactory {
	return []storeFactory{
		{"memory", func(t *testing.T, clk Clock, m *Metrics) Store {
			s, err := NewMemory(MemorySettings{Clock: clk}, m)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}},
		{"redis", func(t *testing.T, clk Clock, m *Metrics) Store {
			srv := startRedis(t)
			return NewRedis(srv.Client(t), RedisSettings{Clock: clk}, m)
		}},
	}
}

// forEachStore runs fn against every store with a fresh fake clock.
func forEachStore(t *testing.T, fn func(t *testing.T, s Store, clk *fakeClock)) {
	for _, f := range storeFactories() {
		t.Run(f.name, func(t *testing.T) {
			clk := newFakeClock()
			fn(t, f.new(t, clk, NewMetrics(prometheus.NewRegistry())), clk)
		})
	}
}

var (
	testScope = Scope{Principal: "c0ffee", Method: "POST", Route: "/orders", Key: "key-1"}
	testFP    = Fingerprint{0xaa, 31: 0x01}
)

func mustClaim(t *testing.T, s Store, scope Scope, lease time.Duration) *Claim {
	t.Helper()
	c, rec, err := s.Claim(context.Background(), scope, testFP, lease)
	if err != nil || c == nil || rec != nil {
		t.Fatalf("Claim: claim %v, record %+v, err %v; want a claim", c, rec, err)
	}
	return c
}

func mustFind(t *testing.T, s Store, scope Scope, want State) *Record {
	t.Helper()
	c, rec, err := s.Claim(context.Background(), scope, Fingerprint{0xbb}, time.Minute)
	if err != nil || c != nil || rec == nil {
		t.Fatalf("Claim: claim %+v, record %+v, err %v; want the %s record", c, rec, err, want)
	}
	if rec.State != want || rec.Scope != scope {
		t.Fatalf("record state %s scope %+v; want %s %+v", rec.State, rec.Scope, want, scope)
	}
	if rec.Owner != "" {
		t.Fatalf("owner token %q handed to a non-owner", rec.Owner)
	}
	return rec
}

func sampleResponse() *Response {
	return &Response{
		Status: 201,
		Header: map[string][]string{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}, "Etag": {`"v1"`}},
		Body:   []byte("{\"id\":42}\n\x00\xfe"),
	}
}

func TestStoreClaimOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, clk *fakeClock) {
		c := mustClaim(t, s, testScope, 30*time.Second)
		if c.Owner == "" || c.Scope != testScope || c.Fingerprint != testFP || !c.LeaseUntil.Equal(clk.Now().Add(30*time.Second)) {
			t.Fatalf("claim %+v", c)
		}
		rec := mustFind(t, s, testScope, StateInProgress)
		if rec.Fingerprint != testFP {
			t.Errorf("in-progress fingerprint %s, want the first request's %s", rec.Fingerprint, testFP)
		}
		if !rec.LeaseUntil.Equal(c.LeaseUntil) || !rec.CreatedAt.Equal(clk.Now()) {
			t.Errorf("in-progress lease %v created %v; want %v %v", rec.LeaseUntil, rec.CreatedAt, c.LeaseUntil, clk.Now())
		}
		// Other principals, methods and routes are other scopes.
		for _, other := range []Scope{
			{Principal: "other", Method: "POST", Route: "/orders", Key: "key-1"},
			{Principal: "c0ffee", Method: "PATCH", Route: "/orders", Key: "key-1"},
			{Principal: "c0ffee", Method: "POST", Route: "/payments", Key: "key-1"},
		} {
			mustClaim(t, s, other, time.Minute)
		}
	})
}

func TestStoreConcurrentClaimOneWinner(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		const n = 32
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			mu      sync.Mutex
			winners []*Claim
			losers  int
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c, rec, err := s.Claim(context.Background(), testScope, testFP, time.Minute)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("Claim: %v", err)
				case c != nil:
					winners = append(winners, c)
				case rec != nil && rec.State == StateInProgress:
					losers++
				default:
					t.Errorf("Claim returned neither claim nor in-progress record: %+v", rec)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || losers != n-1 {
			t.Fatalf("%d winners, %d losers; want 1 and %d", len(winners), losers, n-1)
		}
	})
}

func TestStoreCompleteThenReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, clk *fakeClock) {
		ctx := context.Background()
		c := mustClaim(t, s, testScope, time.Minute)
		want := sampleResponse()
		clk.Advance(2 * time.Second)
		if err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: want}, time.Hour); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		rec := mustFind(t, s, testScope, StateCompleted)
		if rec.Response.Status != want.Status || !reflect.DeepEqual(rec.Response.Header, want.Header) || !bytes.Equal(rec.Response.Body, want.Body) {
			t.Fatalf("replayed %+v, want %+v", rec.Response, want)
		}
		if rec.Fingerprint != testFP {
			t.Errorf("fingerprint %s, want %s", rec.Fingerprint, testFP)
		}
		if !rec.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
			t.Errorf("ExpiresAt %v, want completion time + retention %v", rec.ExpiresAt, clk.Now().Add(time.Hour))
		}
		// A second Complete by the same claim does not overwrite.
		err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: &Response{Status: 500}}, time.Hour)
		if !errors.Is(err, ErrNotOwner) {
			t.Fatalf("second Complete: %v, want ErrNotOwner", err)
		}
		if got := mustFind(t, s, testScope, StateCompleted); got.Response.Status != want.Status {
			t.Fatalf("second Complete overwrote the record: status %d", got.Response.Status)
		}
		if err := s.Release(ctx, c); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("Release after Complete: %v, want ErrNotOwner", err)
		}
		mustFind(t, s, testScope, StateCompleted)
	})
}

// TestStoreCompleteKeepsTrailers: a gRPC response's trailers (status,
// message, custom and -bin metadata) come back exactly, as does a
// Trailers-Only response (the status among the headers, no body).
func TestStoreCompleteKeepsTrailers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		ctx := context.Background()
		responses := map[string]*Response{
			"message and trailers": {
				Status: 200,
				Header: map[string][]string{"Content-Type": {"application/grpc"}, "X-Echo-Initial": {"hello"}},
				Body:   []byte{0, 0, 0, 0, 4, 0x0a, 0x02, 0x00, 0xff},
				Trailer: map[string][]string{
					"Grpc-Status": {"0"}, "Grpc-Message": {""},
					"X-Echo-Trailing-Bin": {"AAH+/w"}, "X-Many": {"1", "2"},
				},
			},
			"trailers only": {
				Status: 200,
				Header: map[string][]string{"Content-Type": {"application/grpc"}, "Grpc-Status": {"13"}, "Grpc-Message": {"boom"}},
			},
		}
		for name, want := range responses {
			scope := testScope
			scope.Key = name
			c := mustClaim(t, s, scope, time.Minute)
			if err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: want}, time.Hour); err != nil {
				t.Fatalf("%s: Complete: %v", name, err)
			}
			got := mustFind(t, s, scope, StateCompleted).Response
			if got.Status != want.Status || !reflect.DeepEqual(got.Header, want.Header) ||
				!bytes.Equal(got.Body, want.Body) || !reflect.DeepEqual(got.Trailer, want.Trailer) {
				t.Fatalf("%s: stored %+v, want %+v", name, got, want)
			}
		}
	})
}

func TestStoreNotReplayable(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		c := mustClaim(t, s, testScope, time.Minute)
		reason := "response of 3.2 MiB over the 1 MiB replay cap"
		if err := s.Complete(context.Background(), c, &Record{State: StateNotReplayable, Reason: reason, Status: 200}, 0); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		rec := mustFind(t, s, testScope, StateNotReplayable)
		if rec.Reason != reason || rec.Status != 200 || rec.Response != nil {
			t.Fatalf("record %+v", rec)
		}
	})
}

func TestStoreCompleteRejectsBadRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		ctx := context.Background()
		c := mustClaim(t, s, testScope, time.Minute)
		for _, bad := range []*Record{nil, {State: StateInProgress}, {State: StateCompleted}} {
			if err := s.Complete(ctx, c, bad, time.Hour); err == nil || errors.Is(err, ErrNotOwner) {
				t.Errorf("Complete(%+v) = %v; want a validation error", bad, err)
			}
		}
		if err := s.Complete(ctx, c, &Record{State: StateNotReplayable}, -time.Second); err == nil {
			t.Error("negative retention accepted")
		}
		if _, _, err := s.Claim(ctx, testScope, testFP, -time.Second); err == nil {
			t.Error("negative lease accepted")
		}
		// The claim survived the bad calls.
		mustFind(t, s, testScope, StateInProgress)
		if err := s.Complete(ctx, c, &Record{State: StateNotReplayable, Reason: "streaming response"}, time.Hour); err != nil {
			t.Fatalf("Complete after bad calls: %v", err)
		}
	})
}

func TestStoreReleaseLetsNextClaimWin(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		ctx := context.Background()
		c1 := mustClaim(t, s, testScope, time.Minute)
		forged := *c1
		forged.Owner = "not-the-owner"
		if err := s.Release(ctx, &forged); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("Release by non-owner: %v, want ErrNotOwner", err)
		}
		mustFind(t, s, testScope, StateInProgress)
		if err := s.Release(ctx, c1); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := s.Release(ctx, c1); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("second Release: %v, want ErrNotOwner", err)
		}
		c2 := mustClaim(t, s, testScope, time.Minute)
		if c2.Owner == c1.Owner {
			t.Fatal("new claim reused the old owner token")
		}
	})
}

func TestStoreStaleOwnerCannotComplete(t *testing.T) {
	for _, how := range []string{"released", "lease expired"} {
		t.Run(how, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s Store, clk *fakeClock) {
				ctx := context.Background()
				c1 := mustClaim(t, s, testScope, 10*time.Second)
				if how == "released" {
					if err := s.Release(ctx, c1); err != nil {
						t.Fatal(err)
					}
				} else {
					clk.Advance(10 * time.Second)
				}
				c2 := mustClaim(t, s, testScope, time.Minute)
				err := s.Complete(ctx, c1, &Record{State: StateCompleted, Response: &Response{Status: 500}}, time.Hour)
				if !errors.Is(err, ErrNotOwner) {
					t.Fatalf("stale Complete: %v, want ErrNotOwner", err)
				}
				if err := s.Release(ctx, c1); !errors.Is(err, ErrNotOwner) {
					t.Fatalf("stale Release: %v, want ErrNotOwner", err)
				}
				// No overwrite: the new owner's claim still stands and completes.
				mustFind(t, s, testScope, StateInProgress)
				if err := s.Complete(ctx, c2, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
					t.Fatalf("owner Complete: %v", err)
				}
				if rec := mustFind(t, s, testScope, StateCompleted); rec.Response.Status != 201 {
					t.Fatalf("status %d, want the owner's 201", rec.Response.Status)
				}
			})
		})
	}
}

func TestStoreLeaseExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, clk *fakeClock) {
		c1 := mustClaim(t, s, testScope, 10*time.Second)
		clk.Advance(10*time.Second - time.Nanosecond)
		mustFind(t, s, testScope, StateInProgress)
		clk.Advance(time.Nanosecond)
		c2 := mustClaim(t, s, testScope, 10*time.Second)
		if c2.Owner == c1.Owner || !c2.LeaseUntil.Equal(clk.Now().Add(10*time.Second)) {
			t.Fatalf("takeover claim %+v", c2)
		}
		// A lapsed claim that nobody took over can still be completed by its owner.
		other := Scope{Principal: "p", Method: "POST", Route: "/r", Key: "k"}
		c3 := mustClaim(t, s, other, time.Second)
		clk.Advance(2 * time.Second)
		if err := s.Complete(context.Background(), c3, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
			t.Fatalf("Complete of a lapsed but untaken claim: %v", err)
		}
		mustFind(t, s, other, StateCompleted)
	})
}

func TestStoreRetentionExpiry(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, clk *fakeClock) {
		c := mustClaim(t, s, testScope, time.Minute)
		if err := s.Complete(context.Background(), c, &Record{State: StateCompleted, Response: sampleResponse()}, time.Hour); err != nil {
			t.Fatal(err)
		}
		expires := clk.Now().Add(time.Hour)
		clk.Advance(time.Hour - time.Nanosecond)
		if rec := mustFind(t, s, testScope, StateCompleted); !rec.ExpiresAt.Equal(expires) {
			t.Fatalf("ExpiresAt %v, want %v", rec.ExpiresAt, expires)
		}
		// ExpiresAt is now-1ns: absent, whatever the store's own TTL says.
		clk.Advance(2 * time.Nanosecond)
		c2 := mustClaim(t, s, testScope, time.Minute)
		if err := s.Complete(context.Background(), c2, &Record{State: StateNotReplayable, Reason: "streaming response", Status: 200}, time.Hour); err != nil {
			t.Fatalf("Complete after expiry: %v", err)
		}
		mustFind(t, s, testScope, StateNotReplayable)
	})
}

func TestStoreManyScopes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		ctx := context.Background()
		const n = 50
		claims := make([]*Claim, n)
		for i := range n {
			claims[i] = mustClaim(t, s, Scope{Principal: "p", Method: "POST", Route: "/r", Key: fmt.Sprint("k", i)}, time.Minute)
		}
		for i, c := range claims {
			resp := &Response{Status: 200 + i%5, Body: []byte(fmt.Sprint("body-", i))}
			if err := s.Complete(ctx, c, &Record{State: StateCompleted, Response: resp}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			rec := mustFind(t, s, Scope{Principal: "p", Method: "POST", Route: "/r", Key: fmt.Sprint("k", i)}, StateCompleted)
			if string(rec.Response.Body) != fmt.Sprint("body-", i) {
				t.Fatalf("scope %d replays %q", i, rec.Response.Body)
			}
		}
	})
}
