package httpproxy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tracecar/tracecar/dedupe"
	"github.com/tracecar/tracecar/proxy"
)

// IdemMode says what a route does with the Idempotency-Key header.
type IdemMode int

// The route modes. The zero value is IdemOff.
const (
	// IdemOff ignores the header: requests pass through unprotected.
	IdemOff IdemMode = iota
	// IdemOptional protects requests that carry a key; requests without one
	// pass through.
	IdemOptional
	// IdemRequired protects every request; one without a key gets 400.
	IdemRequired
)

// String is "off", "optional" or "required".
func (m IdemMode) String() string {
	switch m {
	case IdemOff:
		return "off"
	case IdemOptional:
		return "optional"
	case IdemRequired:
		return "required"
	default:
		return "IdemMode(" + strconv.Itoa(int(m)) + ")"
	}
}

// IdemRoute sets the mode of the requests it matches.
type IdemRoute struct {
	// Method is the request method to match, compared exactly ("POST").
	// Empty: any method.
	Method string
	// Path is an exact path ("/payments"), or a prefix ending in "/*"
	// ("/payments/*" matches "/payments" and everything under
	// "/payments/"). Empty or "/*": any path.
	Path string
	// Mode applies to the requests that match.
	Mode IdemMode
}

// Defaults of IdempotencySettings.
const (
	DefaultIdemMaxRequestBytes  = 1 << 20
	DefaultIdemMaxResponseBytes = 1 << 20
)

// IdempotencySettings configure Idempotency-Key enforcement
// (draft-ietf-httpapi-idempotency-key-header). Zero values mean the
// documented defaults.
//
// A protected request is one execution per scope: principal, method, path
// and key. The first request with a key is forwarded and its response is
// recorded; a retry with the same key and the same request (fingerprint)
// gets that response again, byte for byte, with "Idempotent-Replayed: true".
// A retry while the first is still executing gets 409 with Retry-After; the
// same key with a different request gets 422; a missing key on a required
// route, or an invalid one, gets 400. Problem bodies say what to fix.
//
// Replays repeat the recorded status, end-to-end headers and body.
// Hop-by-hop headers are never replayed, Content-Length is recomputed from
// the stored body, and Date is the time of the replay. Location, ETag and
// Set-Cookie are replayed as recorded: the retry gets what the first
// request got, cookies included.
//
// What is recorded: every response the app produced, 4xx and 5xx
// included, and the 502/504 problem tracecar answered when the app failed
// after the request was sent (the outcome is ambiguous, so it is never run
// again). The key is released, so that a retry executes, only when the app
// provably never got the request (the connection could not be made, the
// circuit breaker was open) or answered one of ReleaseStatuses. A response
// over MaxResponseBytes, a streaming response (text/event-stream, a
// protocol upgrade) or one carrying trailers is recorded as "executed, not
// replayable": a retry gets 409, never a second execution.
//
// A client that hangs up does not cancel the execution: the request to the
// app runs on, bounded by the lease, and its result is recorded.
//
// gRPC calls are protected the same way (routes see method POST and the
// path /pkg.Service/Method; the key is idempotency-key metadata): a unary
// call is executed once and its retries get the recorded headers, message
// bytes and trailers again. A call that streams its request is refused with
// FAILED_PRECONDITION, a streamed response (more than one message) is
// recorded as not replayable, and every answer of tracecar's own is a gRPC
// status (see grpc_idempotency.go for the mapping and the release rule).
type IdempotencySettings struct {
	// Routes set the mode per method and path; the first match wins. When
	// none matches, POST and PATCH are IdemOptional and every other method
	// is IdemOff (GET, HEAD, OPTIONS, PUT and DELETE are idempotent by
	// definition, RFC 9110 §9.2.2). A key belongs to its principal and its
	// route: on the same route, another method or path is a mismatch (422).
	Routes []IdemRoute
	// PrincipalHeaders identify the client: the principal is the hex SHA-256
	// of their values, never the raw values and never the client address.
	// Requests without any of them share one anonymous principal. Nil:
	// ["Authorization"]; empty and non-nil: every client is one principal.
	PrincipalHeaders []string
	// FingerprintHeaders are part of the request's fingerprint, with the
	// method, the path and query (byte for byte, not normalised) and the
	// body. Nil: ["Content-Type"]; empty and non-nil: none.
	FingerprintHeaders []string
	// MaxRequestBytes caps the body of a protected request, which is
	// buffered to fingerprint it; over it the answer is 413 and nothing is
	// recorded. Settings.MaxBodyBytes applies too when smaller. Zero: 1 MiB.
	MaxRequestBytes int64
	// MaxResponseBytes is the largest response body recorded for replay;
	// a larger one is delivered in full but recorded as not replayable.
	// Zero: 1 MiB.
	MaxResponseBytes int64
	// Retention is how long a completed record is replayed (the draft: the
	// resource SHOULD publish its expiration policy). Zero: 24h.
	Retention time.Duration
	// Lease is how long an execution holds its key. The request to the app
	// is cut shortly before the lease ends (at nine tenths of it, at most 5s
	// earlier), so an execution never outlives its claim; a claim whose
	// lease has passed is presumed dead and the next request takes the key
	// over. Set it above the app's slowest response. Zero: 60s.
	Lease time.Duration
	// ReleaseStatuses are the app's statuses that mean "nothing happened,
	// try again": the key is released and the response is not recorded.
	// Nil: [429]; empty and non-nil: none (503 is often added).
	ReleaseStatuses []int
	// Wait, when positive, holds a request whose key is still executing
	// for up to this long, then replays the result; a request still
	// waiting at the end gets 409. Zero: 409 at once.
	Wait time.Duration
	// Clock is the time source of the default store and of replayed Date
	// headers. Nil: the system clock.
	Clock dedupe.Clock
}

// defaultIdemLease is the lease when IdempotencySettings.Lease is zero.
const defaultIdemLease = dedupe.DefaultLease

// ErrIdempotencySettings is wrapped by the error New returns for invalid
// IdempotencySettings.
var ErrIdempotencySettings = errors.New("httpproxy: invalid idempotency settings")

// idempotency is the Idempotency-Key middleware of one Handler.
type idempotency struct {
	h          *Handler
	s          IdempotencySettings
	store      dedupe.Store
	ownStore   *dedupe.Memory // the default store, closed with the Handler
	metrics    *IdempotencyMetrics
	rp         *httputil.ReverseProxy
	maxBody    int64         // request body cap: MaxRequestBytes, or MaxBodyBytes when smaller
	execBound  time.Duration // how long an execution may run: a little under the lease
	releaseSet map[int]struct{}
	hashers    sync.Pool
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// newIdempotency validates s, applies its defaults and builds the middleware
// for h. It runs after h's transport and reverse proxy are built.
func newIdempotency(h *Handler, s IdempotencySettings, d Deps) (*idempotency, error) {
	if err := s.applyDefaults(); err != nil {
		return nil, err
	}
	x := &idempotency{
		h: h, s: s, store: d.IdempotencyStore, metrics: d.IdempotencyMetrics,
		maxBody:    s.MaxRequestBytes,
		execBound:  s.Lease - min(s.Lease/10, 5*time.Second),
		releaseSet: make(map[int]struct{}, len(s.ReleaseStatuses)),
	}
	if n := h.settings.MaxBodyBytes; n > 0 && n < x.maxBody {
		x.maxBody = n
	}
	for _, st := range s.ReleaseStatuses {
		x.releaseSet[st] = struct{}{}
	}
	x.hashers.New = func() any { return dedupe.NewHasher() }
	if x.store == nil {
		mem, err := dedupe.NewMemory(dedupe.MemorySettings{Clock: s.Clock}, nil)
		if err != nil {
			return nil, fmt.Errorf("httpproxy: idempotency store: %w", err)
		}
		x.store, x.ownStore = mem, mem
	}
	x.rp = &httputil.ReverseProxy{
		Rewrite:        x.rewrite,
		Transport:      upstreamTransport{http: h.tr, grpc: h.grpcTr},
		BufferPool:     proxy.BufferPool{},
		ModifyResponse: x.modifyResponse,
		ErrorHandler:   x.errorHandler,
		ErrorLog:       h.rp.ErrorLog,
	}
	return x, nil
}

func (s *IdempotencySettings) applyDefaults() error {
	for i, rt := range s.Routes {
		switch {
		case rt.Mode < IdemOff || rt.Mode > IdemRequired:
			return fmt.Errorf("%w: route %d has unknown mode %d", ErrIdempotencySettings, i, rt.Mode)
		case rt.Path != "" && !strings.HasPrefix(rt.Path, "/"):
			return fmt.Errorf("%w: route %d path %q must start with '/'", ErrIdempotencySettings, i, rt.Path)
		case strings.Contains(strings.TrimSuffix(rt.Path, "/*"), "*"):
			return fmt.Errorf("%w: route %d path %q: '*' is only allowed as a final \"/*\"", ErrIdempotencySettings, i, rt.Path)
		}
	}
	for name, v := range map[string]int64{"MaxRequestBytes": s.MaxRequestBytes, "MaxResponseBytes": s.MaxResponseBytes,
		"Retention": int64(s.Retention), "Lease": int64(s.Lease), "Wait": int64(s.Wait)} {
		if v < 0 {
			return fmt.Errorf("%w: %s is negative (%d)", ErrIdempotencySettings, name, v)
		}
	}
	for _, st := range s.ReleaseStatuses {
		if st < 100 || st > 599 {
			return fmt.Errorf("%w: release status %d is not an HTTP status", ErrIdempotencySettings, st)
		}
	}
	if s.PrincipalHeaders == nil {
		s.PrincipalHeaders = []string{"Authorization"}
	}
	if s.FingerprintHeaders == nil {
		s.FingerprintHeaders = []string{"Content-Type"}
	}
	s.PrincipalHeaders = canonicalNames(s.PrincipalHeaders)
	s.FingerprintHeaders = canonicalNames(s.FingerprintHeaders)
	if s.MaxRequestBytes == 0 {
		s.MaxRequestBytes = DefaultIdemMaxRequestBytes
	}
	if s.MaxResponseBytes == 0 {
		s.MaxResponseBytes = DefaultIdemMaxResponseBytes
	}
	if s.Retention == 0 {
		s.Retention = dedupe.DefaultRetention
	}
	if s.Lease == 0 {
		s.Lease = defaultIdemLease
	}
	if s.ReleaseStatuses == nil {
		s.ReleaseStatuses = []int{http.StatusTooManyRequests}
	}
	if s.Clock == nil {
		s.Clock = systemClock{}
	}
	return nil
}

func canonicalNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// close releases the default store, if the middleware made it.
func (x *idempotency) close() {
	if x.ownStore != nil {
		x.ownStore.Close()
	}
}

// route finds the route of a request: the first matching one, else the
// default (POST and PATCH optional on every path). The route, not the
// request's own method and path, scopes the key: a key reused on the same
// route with another method, path, query or body is the same operation
// with a different payload (422), as Stripe treats a key reused on another
// endpoint; on another route it is a different operation.
func (x *idempotency) route(method, path string) IdemRoute {
	for _, rt := range x.s.Routes {
		if (rt.Method == "" || rt.Method == method) && pathMatches(rt.Path, path) {
			return rt
		}
	}
	if method == http.MethodPost || method == http.MethodPatch {
		return IdemRoute{Method: method, Path: "/*", Mode: IdemOptional}
	}
	return IdemRoute{Mode: IdemOff}
}

func pathMatches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return pattern == "" || pattern == path
}

// principal is the hex SHA-256 of the principal headers' names and values,
// length-prefixed so values cannot shift between headers.
func (x *idempotency) principal(r *http.Request) string {
	sum := sha256.New()
	var buf [8]byte
	write := func(s string) {
		_, _ = sum.Write(binary.BigEndian.AppendUint64(buf[:0], uint64(len(s)))) // hash.Hash.Write never fails
		_, _ = sum.Write([]byte(s))
	}
	write("tracecar.idempotency.principal.v1")
	for _, name := range x.s.PrincipalHeaders {
		vals := r.Header[name]
		write(name)
		write(strconv.Itoa(len(vals)))
		for _, v := range vals {
			write(v)
		}
	}
	var out [sha256.Size]byte
	return hex.EncodeToString(sum.Sum(out[:0]))
}

// fingerprint hashes the method, the path and query as sent, the
// fingerprint headers and body.
func (x *idempotency) fingerprint(r *http.Request, body []byte) dedupe.Fingerprint {
	hs := x.hashers.Get().(*dedupe.Hasher)
	defer x.hashers.Put(hs)
	hs.Reset()
	hs.Field("method", r.Method)
	hs.Field("target", r.URL.RequestURI())
	for _, name := range x.s.FingerprintHeaders {
		vals := r.Header[name]
		hs.Field("header", name)
		hs.Field("count", strconv.Itoa(len(vals)))
		for _, v := range vals {
			hs.Field("value", v)
		}
	}
	_, _ = hs.Write(body) // never fails
	return hs.Sum()
}
