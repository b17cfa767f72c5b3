package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cascade: A (this test) → B (the demo app behind a sidecar) → C (a
// server that never answers). B's sidecar gives each egress request
// cascadeTimeout; A sends cascadeRequests requests to B's /chain?to=C,
// cascadeConcurrency at a time.
const (
	cascadeRequests    = 200
	cascadeConcurrency = 20
	cascadeTimeout     = 500 * time.Millisecond
	cascadeTrip        = 5 // TRACECAR_BREAKER_CONSECUTIVE_FAILURES
)

// Goroutines B's sidecar may hold per request in flight: the inbound
// connection (its serving goroutine and, while a request is active, its
// background reader), the pooled connection to the app (read and write
// loops), the app's connection to the egress proxy (serving goroutine and
// background reader) and the connection to C (read and write loops) make 8;
// one more for a connection being dialed and one for the egress timeout's
// timer firing.
const goroutinesPerRequest = 10

// cascadeIdle is B's sidecar's idle timeout for keep-alive connections, both
// those it serves and those it pools to the app, so that after the load its
// goroutines return to what they were before.
const cascadeIdle = time.Second

// goroutinesAfterSlack is how many more goroutines than before the load B's
// sidecar may have once the load's connections have gone idle and closed:
// the span exporter's HTTP client may hold a connection it did not before
// (read and write loops), plus one it is dialing or closing.
const goroutinesAfterSlack = 4

// hangingServer is C: it counts the requests that reach it and answers none;
// each waits until its client gives up or the test ends.
type hangingServer struct {
	*httptest.Server
	reached atomic.Int64
}

func startHangingServer(t *testing.T) *hangingServer {
	t.Helper()
	h := &hangingServer{}
	release := make(chan struct{})
	h.Server = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		h.reached.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		h.Close()
	})
	return h
}

// hostPort is C's address as the egress proxy names it (its breaker's key).
func (h *hangingServer) hostPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(h.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(host, port)
}

// problem is an RFC 9457 problem body from the egress proxy.
type problem struct {
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Upstream string `json:"upstream"`
}

// loadResult is what A saw.
type loadResult struct {
	statuses  map[int]int     // A's responses by status
	latencies []time.Duration // of every request, sorted
	wall      time.Duration   // from the first request to the last response
	// naming counts the 503 and 504 responses whose body is the egress
	// proxy's problem, with that status and C as its upstream.
	naming map[int]int
	// retryAfter counts the 503 responses with a Retry-After header.
	retryAfter int
	errs       []error // requests that got no response at all
	sample     map[int]string
}

// percentile returns the p-th percentile (0 < p <= 1) of the sorted
// latencies, nearest-rank.
func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(r.latencies)))) - 1
	return r.latencies[max(i, 0)]
}

func (r loadResult) String() string {
	return fmt.Sprintf("p50=%s p90=%s p99=%s max=%s (%d requests in %s, statuses %v)",
		r.percentile(0.50).Round(time.Millisecond), r.percentile(0.90).Round(time.Millisecond),
		r.percentile(0.99).Round(time.Millisecond), r.percentile(1).Round(time.Millisecond),
		len(r.latencies), r.wall.Round(time.Millisecond), r.statuses)
}

// fire sends n requests for target to B's inbound listener, concurrency at a
// time, each worker sending its next request when the previous one ends.
func fire(client *http.Client, inbound, target, upstream string, n, concurrency int) loadResult {
	path := inbound + "/chain?forward=correlation&to=" + url.QueryEscape(target)
	res := loadResult{statuses: map[int]int{}, naming: map[int]int{}, sample: map[int]string{}}
	var mu sync.Mutex
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for range jobs {
				t0 := time.Now()
				status, retry, body, err := get(client, path)
				d := time.Since(t0)
				var reply chainReply
				var pb problem
				named := err == nil && json.Unmarshal(body, &reply) == nil &&
					json.Unmarshal(reply.Downstream, &pb) == nil && pb.Status == status && pb.Upstream == upstream
				mu.Lock()
				res.latencies = append(res.latencies, d)
				if err != nil {
					res.errs = append(res.errs, err)
				} else {
					res.statuses[status]++
					if _, ok := res.sample[status]; !ok {
						res.sample[status] = string(body)
					}
				}
				if named {
					res.naming[status]++
				}
				if status == http.StatusServiceUnavailable && retry != "" {
					res.retryAfter++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

// get sends one GET and returns the status, the Retry-After header and the body.
func get(client *http.Client, u string) (status int, retryAfter string, body []byte, err error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header.Get("Retry-After"), body, err
}

// TestCascade: A → B → C with C hanging. With B's egress circuit breaker, C
// is cut off after a handful of timeouts: few requests reach it, A gets fast
// 503s naming C, and B's sidecar's goroutines stay bounded. Without it every
// request waits out the egress timeout at C. Counts are asserted; latencies
// are only logged.
func TestCascade(t *testing.T) {
	var with, without loadResult
	t.Run("breaker", func(t *testing.T) { with = cascadeWithBreaker(t) })
	t.Run("no breaker", func(t *testing.T) { without = cascadeWithoutBreaker(t) })
	t.Logf("cascade with breaker:    %s", with)
	t.Logf("cascade without breaker: %s", without)
}

func cascadeWithBreaker(t *testing.T) loadResult {
	// Default failure statuses: B's inbound breaker, which guards B's app,
	// counts only connect errors and timeouts, so the 504s and 503s B
	// relays from C do not take B offline; the egress breaker for C is
	// what opens. It stays open for the whole test.
	run := runCascade(t, "cascade-breaker",
		"TRACECAR_BREAKER_ENABLED=true",
		fmt.Sprintf("TRACECAR_BREAKER_CONSECUTIVE_FAILURES=%d", cascadeTrip),
		"TRACECAR_BREAKER_OPEN_TIMEOUT=30s",
	)
	res, cKey := run.res, run.c.hostPort(t)
	reached := int(run.c.reached.Load())
	timedOut, rejected := res.statuses[http.StatusGatewayTimeout], res.statuses[http.StatusServiceUnavailable]

	// Every request C receives times out, a failure; the breaker opens at
	// the cascadeTrip-th. Before that, each of A's workers has its first
	// request admitted (at most cascadeConcurrency, all in flight together).
	// A worker's later request is admitted only if it arrives while the
	// breaker is still closed, after its previous request failed: the egress
	// proxy reports the failure to the breaker before its 504 leaves, so
	// each such admission follows one of the first cascadeTrip-1 failures.
	bound := cascadeConcurrency + cascadeTrip - 1
	if reached < cascadeTrip || reached > bound {
		t.Errorf("%d requests reached C, want %d to %d: the breaker opens at the %dth failure, with up to %d requests in flight",
			reached, cascadeTrip, bound, cascadeTrip, cascadeConcurrency)
	}
	if timedOut+rejected != cascadeRequests || reached != timedOut {
		t.Errorf("A got %d × 504 and %d × 503 (all statuses %v), C saw %d requests; want every request that reached C to time out (504) and every other one rejected by the breaker (503)",
			timedOut, rejected, res.statuses, reached)
	}
	if res.naming[http.StatusGatewayTimeout] != timedOut || res.naming[http.StatusServiceUnavailable] != rejected {
		t.Errorf("%d of %d 504s and %d of %d 503s carry the egress proxy's problem naming C (%s); want all. A 503: %s",
			res.naming[http.StatusGatewayTimeout], timedOut, res.naming[http.StatusServiceUnavailable], rejected, cKey,
			res.sample[http.StatusServiceUnavailable])
	}
	if res.retryAfter != rejected {
		t.Errorf("%d of %d 503s have Retry-After, want all", res.retryAfter, rejected)
	}
	if v, ok := run.after.get("tracecar_breaker_state", "upstream", cKey); !ok || v != 1 {
		t.Errorf("tracecar_breaker_state{upstream=%q} = %v (present %v), want 1 (open)", cKey, v, ok)
	}
	if v, _ := run.after.get("tracecar_breaker_rejections_total", "upstream", cKey); int(v) != rejected {
		t.Errorf("tracecar_breaker_rejections_total{upstream=%q} = %v, want %d, the 503s A got", cKey, v, rejected)
	}
	// B's own breaker never left closed (its series appear with the first
	// transition).
	if v, ok := run.after.get("tracecar_breaker_transitions_total", "upstream", run.b.upstream); ok {
		t.Errorf("tracecar_breaker_transitions_total{upstream=%q} (B itself) = %v, want no transition", run.b.upstream, v)
	}
	// B still serves what does not depend on C.
	if status, _, body, err := get(&http.Client{Timeout: 10 * time.Second}, run.b.inboundURL+"/hello"); err != nil || status != http.StatusOK {
		t.Errorf("GET /hello on B after the cascade: %d %s %v, want 200", status, body, err)
	}
	return res
}

func cascadeWithoutBreaker(t *testing.T) loadResult {
	run := runCascade(t, "cascade-no-breaker", "TRACECAR_BREAKER_ENABLED=false")
	res, cKey := run.res, run.c.hostPort(t)
	if reached := run.c.reached.Load(); reached != cascadeRequests {
		t.Errorf("%d requests reached C, want all %d", reached, cascadeRequests)
	}
	if n := res.statuses[http.StatusGatewayTimeout]; n != cascadeRequests || res.naming[http.StatusGatewayTimeout] != n {
		t.Errorf("A got statuses %v, %d 504s naming C (%s); want %d 504s from the egress timeout, all naming C. A 504: %s",
			res.statuses, res.naming[http.StatusGatewayTimeout], cKey, cascadeRequests, res.sample[http.StatusGatewayTimeout])
	}
	if v, ok := run.after.get("tracecar_breaker_state", "upstream", cKey); ok {
		t.Errorf("tracecar_breaker_state{upstream=%q} = %v with breaking disabled, want no series", cKey, v)
	}
	return res
}

// cascadeRun is one run of the cascade.
type cascadeRun struct {
	b     stack
	c     *hangingServer
	res   loadResult
	after metrics // B's sidecar's metrics once the load is over
}

// runCascade starts C and B (its sidecar with sidecarEnv and the egress
// timeout), sends A's load, and checks what holds with or without the
// breaker: every request got a response, and B's sidecar's requests in
// flight and goroutines stayed bounded during the load and went back down
// after it.
func runCascade(t *testing.T, name string, sidecarEnv ...string) cascadeRun {
	t.Helper()
	run := cascadeRun{c: startHangingServer(t)}
	run.b = startStack(t, name, append([]string{
		"TRACECAR_EGRESS_TIMEOUT=" + cascadeTimeout.String(),
		"TRACECAR_IDLE_TIMEOUT=" + cascadeIdle.String(),
		"TRACECAR_UPSTREAM_IDLE_CONN_TIMEOUT=" + cascadeIdle.String(),
	}, sidecarEnv...)...)

	admin := &http.Client{Timeout: 5 * time.Second}
	before, err := scrape(admin, run.b.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	baseline, ok := before.get("go_goroutines")
	if !ok {
		t.Fatal("B's sidecar exposes no go_goroutines")
	}
	s := startSampler(admin, run.b.adminURL, "go_goroutines", "tracecar_egress_in_flight", "tracecar_http_requests_in_flight")
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        cascadeConcurrency,
			MaxIdleConnsPerHost: cascadeConcurrency, // each worker keeps its connection
		},
	}
	run.res = fire(client, run.b.inboundURL, run.c.URL+"/", run.c.hostPort(t), cascadeRequests, cascadeConcurrency)
	peak := s.finish()
	client.CloseIdleConnections()

	if len(run.res.errs) > 0 {
		t.Errorf("%d of A's requests got no response; the first: %v", len(run.res.errs), run.res.errs[0])
	}
	if s.n == 0 {
		t.Fatalf("no /metrics sample during the load: %v", s.err)
	}
	for _, g := range []string{"tracecar_egress_in_flight", "tracecar_http_requests_in_flight"} {
		if peak[g] > cascadeConcurrency {
			t.Errorf("%s reached %v during the load, want at most %d, A's concurrency", g, peak[g], cascadeConcurrency)
		}
	}
	limit := baseline + goroutinesPerRequest*cascadeConcurrency
	if peak["go_goroutines"] > limit {
		t.Errorf("B's sidecar had %v goroutines during the load, want at most %v (%v before + %d per request in flight × %d)",
			peak["go_goroutines"], limit, baseline, goroutinesPerRequest, cascadeConcurrency)
	}

	// Nothing lingers: once the load's connections have idled out, B's
	// sidecar is back to its goroutines before the load; a leak of even one
	// per request would leave cascadeRequests more.
	idle := baseline + goroutinesAfterSlack
	var after float64
	err = poll(traceDeadline, func() (bool, error) {
		m, err := scrape(admin, run.b.adminURL)
		if err != nil {
			return false, err
		}
		run.after = m
		after, _ = m.get("go_goroutines")
		inflight, _ := m.get("tracecar_egress_in_flight")
		if after > idle || inflight != 0 {
			return false, fmt.Errorf("after the load B's sidecar has %v goroutines (want at most %v) and %v egress requests in flight (want 0)", after, idle, inflight)
		}
		return true, nil
	})
	if err != nil {
		t.Error(err)
	}
	t.Logf("B's sidecar goroutines: %v before the load, at most %v in %d samples during it (limit %v), %v after it",
		baseline, peak["go_goroutines"], s.n, limit, after)
	return run
}
