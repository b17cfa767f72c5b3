// Package config reads the sidecar's environment: the TRACECAR_* variables
// and the standard OTEL_* variables that tracecar checks before the
// OpenTelemetry SDK sees them. It is the only place in tracecar that reads
// the environment; everything else takes the typed [Config] it returns.
//
// Every variable is declared once, as a tagged field: `env` (the name),
// `envDefault` (the default), `help` (one line of meaning) and, where they
// apply, `min`/`max` (inclusive bounds of integers and durations), `oneof`
// (the accepted words, matched without regard to case), `want` (what is
// accepted, in words) and `usage` (a default described rather than parsed).
// Load, the error messages and [Usage] are all derived from these tags.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the sidecar's configuration. Load fills every field; the tags
// document each variable's name, default and accepted values.
type Config struct {
	// Upstream is the URL of the local app that inbound requests are
	// forwarded to: http or https, with a host, without query or fragment.
	Upstream *url.URL `env:"TRACECAR_UPSTREAM,required" help:"URL of the local app that inbound requests are forwarded to." want:"an absolute http:// or https:// URL such as http://127.0.0.1:8080"`

	// InboundAddr is the host:port the inbound proxy listens on.
	InboundAddr string `env:"TRACECAR_INBOUND_ADDR" envDefault:":15006" help:"Address the inbound proxy listens on (HTTP/1.1 and h2c; HTTP/1.1 and HTTP/2 over TLS when a certificate is set)." want:"host:port with port 0-65535"`
	// TLSCertFile and TLSKeyFile are a PEM certificate (chain) and key for
	// the inbound listener; both or neither. Set: it serves TLS only.
	TLSCertFile string `env:"TRACECAR_TLS_CERT_FILE" envDefault:"" usage:"empty, plaintext" help:"PEM certificate (chain) for the inbound listener, which then serves TLS (HTTP/1.1 and HTTP/2, gRPC included) instead of plaintext; reloaded when the file changes." want:"a PEM file path, with TRACECAR_TLS_KEY_FILE"`
	TLSKeyFile  string `env:"TRACECAR_TLS_KEY_FILE" envDefault:"" usage:"empty" help:"PEM private key of TRACECAR_TLS_CERT_FILE." want:"a PEM file path, with TRACECAR_TLS_CERT_FILE"`
	// AdminAddr is the host:port of the admin listener.
	AdminAddr string `env:"TRACECAR_ADMIN_ADDR" envDefault:"127.0.0.1:15000" help:"Address of the admin listener (/healthz, /readyz, /metrics); keep it on loopback." want:"host:port with port 0-65535"`
	// AdminPprof serves Go's profiles under /debug/pprof/ on the admin
	// listener.
	AdminPprof bool `env:"TRACECAR_ADMIN_PPROF" envDefault:"false" help:"Serve Go's runtime profiles (CPU, heap, goroutines) under /debug/pprof/ on the admin listener; they reveal internals, so only on loopback."`

	// CorrelationHeader is the name of the request header that carries the
	// correlation ID, as written (X-Request-ID is honoured too).
	CorrelationHeader string `env:"TRACECAR_CORRELATION_HEADER" envDefault:"X-Correlation-ID" help:"Header carrying the correlation ID; X-Request-ID is also honoured when present." want:"an HTTP header name (RFC 9110 token), not hop-by-hop or trace context, such as X-Correlation-ID"`
	// CorrelationMaxLen is the longest incoming correlation ID kept, in
	// bytes; a longer one is replaced by a new ID.
	CorrelationMaxLen int `env:"TRACECAR_CORRELATION_MAX_LEN" envDefault:"128" min:"1" max:"1024" help:"Longest incoming correlation ID kept, in bytes; a longer one is replaced."`

	// TrustIncomingTrace continues the caller's trace when true. When false
	// (edge mode) every request starts a new trace that links the caller's
	// span.
	TrustIncomingTrace bool `env:"TRACECAR_TRUST_INCOMING_TRACE" envDefault:"true" help:"Continue the caller's trace; false (edge mode) starts a new trace linked to the caller's span."`

	// LogLevel is the minimum level of log lines.
	LogLevel slog.Level `env:"TRACECAR_LOG_LEVEL" envDefault:"info" oneof:"debug info warn error" help:"Minimum level of log lines."`
	// LogFormat is LogFormatJSON or LogFormatText.
	LogFormat string `env:"TRACECAR_LOG_FORMAT" envDefault:"json" oneof:"json text" help:"Format of log lines."`
	// AccessLog writes one log line per proxied request when true.
	AccessLog bool `env:"TRACECAR_ACCESS_LOG" envDefault:"true" help:"Write one log line per proxied request."`

	// DrainDelay is how long, after SIGTERM, readiness reports false while
	// new requests are still accepted, so load balancers notice.
	DrainDelay time.Duration `env:"TRACECAR_DRAIN_DELAY" envDefault:"0s" help:"After SIGTERM, how long readiness is false while requests are still accepted, so load balancers notice."`
	// DrainTimeout is the grace in-flight requests get to finish after the
	// drain delay; 0 closes connections at once.
	DrainTimeout time.Duration `env:"TRACECAR_DRAIN_TIMEOUT" envDefault:"25s" help:"Then, grace for in-flight requests to finish before connections close; 0 closes at once."`

	// MaxHeaderBytes bounds the request header block; larger requests get 431.
	MaxHeaderBytes int `env:"TRACECAR_MAX_HEADER_BYTES" envDefault:"65536" min:"1024" max:"16777216" help:"Largest request header block accepted, in bytes; larger requests get 431."`
	// MaxBodyBytes bounds request bodies; larger bodies get 413. 0 means
	// unlimited.
	MaxBodyBytes int64 `env:"TRACECAR_MAX_BODY_BYTES" envDefault:"0" min:"0" help:"Largest request body accepted, in bytes; larger bodies get 413; 0 = unlimited."`

	// ReadHeaderTimeout is the time a client has to send request headers.
	ReadHeaderTimeout time.Duration `env:"TRACECAR_READ_HEADER_TIMEOUT" envDefault:"10s" min:"1ms" help:"Time a client has to send the request headers."`
	// IdleTimeout is how long an idle client keep-alive connection stays open.
	IdleTimeout time.Duration `env:"TRACECAR_IDLE_TIMEOUT" envDefault:"120s" min:"1ms" help:"How long an idle client keep-alive connection stays open."`

	// UpstreamDialTimeout bounds connecting to the upstream app.
	UpstreamDialTimeout time.Duration `env:"TRACECAR_UPSTREAM_DIAL_TIMEOUT" envDefault:"5s" min:"1ms" help:"Time allowed to connect to the upstream app; failing that, the caller gets 502."`
	// UpstreamResponseHeaderTimeout bounds the wait for the upstream's
	// response headers (exceeded: 504); 0 means no limit.
	UpstreamResponseHeaderTimeout time.Duration `env:"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT" envDefault:"30s" help:"Time the upstream app has to send response headers; exceeded, the caller gets 504; 0 = none."`
	// UpstreamIdleConnTimeout is how long an idle pooled upstream
	// connection is kept.
	UpstreamIdleConnTimeout time.Duration `env:"TRACECAR_UPSTREAM_IDLE_CONN_TIMEOUT" envDefault:"90s" min:"1ms" help:"How long an idle pooled connection to the upstream app is kept."`
	// UpstreamMaxIdleConns is the number of idle upstream connections kept
	// (the pool size; there is one upstream host).
	UpstreamMaxIdleConns int `env:"TRACECAR_UPSTREAM_MAX_IDLE_CONNS" envDefault:"1024" min:"1" max:"65535" help:"Idle connections kept open to the upstream app (the connection pool size)."`
	// GRPCMessageEvents caps the per-message events on an inbound gRPC
	// call's span, per direction; 0 turns them off.
	GRPCMessageEvents int `env:"TRACECAR_GRPC_MESSAGE_EVENTS" envDefault:"64" min:"0" max:"100000" help:"Span events per gRPC message, at most this many per direction of a call (the rest are counted); 0 = none."`
	// GRPCMaxRecvMessageBytes is the largest gRPC message a client may send
	// the app through the sidecar; 0 leaves the limit to the app.
	GRPCMaxRecvMessageBytes uint32 `env:"TRACECAR_GRPC_MAX_RECV_MESSAGE_BYTES" envDefault:"0" help:"Largest gRPC message a client may send to the app, in bytes; a larger one ends the call with RESOURCE_EXHAUSTED before the app sees it; 0 = no limit of the sidecar's (the app's own applies: 4 MiB in grpc-go)."`
	// StreamIdleTimeout closes a streaming response or WebSocket that moved
	// no bytes either way for this long; 0 turns it off.
	StreamIdleTimeout time.Duration `env:"TRACECAR_STREAM_IDLE_TIMEOUT" envDefault:"0s" help:"A streaming response or WebSocket with no bytes either way for this long is closed; 0 = off."`

	// EgressEnabled runs the egress proxy: the forward proxy the app sets
	// as HTTP_PROXY and HTTPS_PROXY to reach its dependencies.
	EgressEnabled bool `env:"TRACECAR_EGRESS_ENABLED" envDefault:"true" help:"Run the egress proxy, the forward proxy the app sets as HTTP_PROXY and HTTPS_PROXY."`
	// EgressAddr is the host:port the egress proxy listens on.
	EgressAddr string `env:"TRACECAR_EGRESS_ADDR" envDefault:"127.0.0.1:15001" help:"Address the egress proxy listens on; keep it on loopback, or anyone who reaches it can use it." want:"host:port with port 0-65535"`
	// EgressGRPCAddr is the host:port of the outbound gRPC proxy: the app's
	// gRPC clients dial it with the destination as :authority.
	EgressGRPCAddr string `env:"TRACECAR_EGRESS_GRPC_ADDR" envDefault:"127.0.0.1:15002" help:"Address of the outbound gRPC proxy (h2c): the app's gRPC clients dial it with the destination as :authority; keep it on loopback." want:"host:port with port 0-65535"`
	// EgressAllow lists the destinations the egress proxy may reach; nil
	// means any destination. Entries are trimmed, lower case, without
	// duplicates, in one of these forms (an entry without a port allows
	// every port):
	//
	//	api.example.com  api.example.com:443  a host name (RFC 1123)
	//	*.example.com    *.example.com:443    any name below example.com
	//	10.1.2.3         10.1.2.3:8080        an IPv4 address
	//	::1              [::1]:443            an IPv6 address, canonical form
	//	10.0.0.0/8       fd00::/8             a CIDR prefix, canonical form
	EgressAllow []string `env:"TRACECAR_EGRESS_ALLOW" envDefault:"" usage:"empty, any destination" help:"Destinations the egress proxy may reach, comma-separated; empty allows any destination." want:"a comma-separated list of host, host:port, *.domain, IP, IP:port, [IPv6]:port or CIDR such as api.example.com:443,*.internal,10.0.0.0/8"`
	// EgressMaxConcurrent bounds the egress requests and tunnels in flight;
	// beyond it, requests get 503.
	EgressMaxConcurrent int `env:"TRACECAR_EGRESS_MAX_CONCURRENT" envDefault:"1024" min:"1" max:"1000000" help:"Most egress requests and tunnels in flight at once; beyond it, requests get 503."`
	// EgressTimeout is the time limit of one egress request; streams are
	// exempt. 0 means no limit.
	EgressTimeout time.Duration `env:"TRACECAR_EGRESS_TIMEOUT" envDefault:"30s" help:"Time limit of one egress request; streams (event streams, WebSockets, CONNECT tunnels) are exempt; 0 = none."`
	// EgressSerialInference parents an egress call that carries neither
	// trace context nor correlation ID under the inbound request in
	// flight, when there is exactly one.
	EgressSerialInference bool `env:"TRACECAR_EGRESS_SERIAL_INFERENCE" envDefault:"false" help:"When exactly one inbound request is in flight, attach outbound calls that carry neither trace context nor a known correlation ID to it."`

	// BreakerEnabled guards each upstream (the local app, and each egress
	// destination host:port) with its own circuit breaker.
	BreakerEnabled bool `env:"TRACECAR_BREAKER_ENABLED" envDefault:"true" help:"Guard each upstream (the local app, each egress destination host:port) with a circuit breaker."`
	// BreakerConsecutiveFailures opens a breaker after this many
	// consecutive failures; 0 turns the rule off. Load refuses 0 here
	// together with a BreakerFailureRatio of 0 while BreakerEnabled.
	BreakerConsecutiveFailures int `env:"TRACECAR_BREAKER_CONSECUTIVE_FAILURES" envDefault:"5" min:"0" max:"1000000" help:"Open the breaker after this many consecutive failures; 0 turns this rule off."`
	// BreakerFailureRatio opens a breaker when at least this share of the
	// requests in BreakerWindow failed, once there were
	// BreakerMinRequests; in (0, 1], or 0 to turn the rule off.
	BreakerFailureRatio float64 `env:"TRACECAR_BREAKER_FAILURE_RATIO" envDefault:"0.5" help:"Open the breaker when this share of the requests in the window failed; 0 turns this rule off." want:"a number from 0 (rule off) to 1 such as 0.5"`
	// BreakerMinRequests is the number of requests BreakerWindow must hold
	// before BreakerFailureRatio is judged.
	BreakerMinRequests int `env:"TRACECAR_BREAKER_MIN_REQUESTS" envDefault:"20" min:"1" max:"1000000" help:"Requests the window must hold before the failure ratio is judged."`
	// BreakerWindow is the rolling window of BreakerFailureRatio.
	BreakerWindow time.Duration `env:"TRACECAR_BREAKER_WINDOW" envDefault:"10s" min:"100ms" help:"Rolling window over which the failure ratio is measured."`
	// BreakerOpenTimeout is the first open period: how long an open breaker
	// rejects requests before it admits probes.
	BreakerOpenTimeout time.Duration `env:"TRACECAR_BREAKER_OPEN_TIMEOUT" envDefault:"5s" min:"1ms" help:"How long an open breaker rejects requests before admitting probes; doubles, with jitter, each time it reopens."`
	// BreakerMaxOpenTimeout caps the doubling open period; at least
	// BreakerOpenTimeout.
	BreakerMaxOpenTimeout time.Duration `env:"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT" envDefault:"60s" min:"1ms" help:"Longest open period the doubling reaches." want:"a Go duration >= TRACECAR_BREAKER_OPEN_TIMEOUT such as 60s"`
	// BreakerHalfOpenProbes is the number of probe requests a half-open
	// breaker admits at once.
	BreakerHalfOpenProbes int `env:"TRACECAR_BREAKER_HALF_OPEN_PROBES" envDefault:"1" min:"1" max:"1000" help:"Probe requests a half-open breaker admits at once; the others are still rejected."`
	// BreakerSuccessesToClose is the number of consecutive probe successes
	// that close a half-open breaker; a probe failure reopens it.
	BreakerSuccessesToClose int `env:"TRACECAR_BREAKER_SUCCESSES_TO_CLOSE" envDefault:"2" min:"1" max:"1000" help:"Consecutive probe successes that close the breaker; a failed probe reopens it."`
	// BreakerFailureStatuses lists, sorted and without duplicates, the
	// upstream response statuses counted as failures, besides connect
	// errors and timeouts. It is empty, not nil, for "none".
	BreakerFailureStatuses []int `env:"TRACECAR_BREAKER_FAILURE_STATUSES" envDefault:"500,502,503,504" help:"Egress destinations' response statuses counted as failures, besides connect errors and timeouts (the app's own breaker counts no statuses); 429 is deliberately not in the default." want:"a comma-separated list of status codes 100-599 and ranges such as 500,502-504, or none"`
	// BreakerMaxUpstreams bounds the breakers kept, one per upstream.
	BreakerMaxUpstreams int `env:"TRACECAR_BREAKER_MAX_UPSTREAMS" envDefault:"1024" min:"1" max:"1000000" help:"Most breakers kept, one per upstream; when full, the least recently used closed one is forgotten."`

	// StitchMaxEntries bounds the inbound requests remembered by
	// correlation ID for trace stitching.
	StitchMaxEntries int `env:"TRACECAR_STITCH_MAX_ENTRIES" envDefault:"4096" min:"1" max:"10000000" help:"Inbound requests remembered by correlation ID for trace stitching (about 350 bytes each); when full, the oldest finished one is forgotten."`
	// StitchTTL is how long a finished inbound request stays remembered.
	StitchTTL time.Duration `env:"TRACECAR_STITCH_TTL" envDefault:"30s" min:"1ms" help:"How long a finished inbound request stays remembered for trace stitching."`

	// IdempotencyEnabled enforces Idempotency-Key on inbound requests: one
	// execution per key, its response replayed to retries.
	IdempotencyEnabled bool `env:"TRACECAR_IDEMPOTENCY_ENABLED" envDefault:"true" help:"Enforce Idempotency-Key on inbound requests: one execution per key, its response replayed to retries."`
	// IdempotencyRoutes are the per-route modes, first match wins; nil
	// means none. A request no rule matches is IdempotencyOptional for
	// POST and PATCH and IdempotencyOff otherwise.
	IdempotencyRoutes []IdempotencyRoute `env:"TRACECAR_IDEMPOTENCY_ROUTES" envDefault:"" usage:"empty, POST and PATCH optional, others off" help:"Idempotency-Key mode per route, first match wins; a request no rule matches gets the default." want:"a comma-separated list of [METHOD ]PATH=MODE rules, PATH exact or ending in /*, MODE off, optional or required, such as POST /payments/*=required,/admin/*=off"`
	// IdempotencyStore is IdempotencyStoreMemory or IdempotencyStoreRedis.
	IdempotencyStore string `env:"TRACECAR_IDEMPOTENCY_STORE" envDefault:"memory" oneof:"memory redis" help:"Where keys are recorded: memory (one replica) or redis (replicas share keys; set TRACECAR_REDIS_URL)."`
	// RedisURL is the Redis server of IdempotencyStoreRedis, as written
	// (it may hold a password: never log it whole). Load requires it when
	// idempotency is enabled with the redis store.
	RedisURL string `env:"TRACECAR_REDIS_URL" envDefault:"" usage:"empty" help:"Redis server of TRACECAR_IDEMPOTENCY_STORE=redis, required with it; errors about it mask its password." want:"a redis://, rediss:// or unix:// URL such as redis://:password@redis:6379/0"`
	// IdempotencyRetention is how long a completed execution's record is
	// kept: its response is replayed to retries until then.
	IdempotencyRetention time.Duration `env:"TRACECAR_IDEMPOTENCY_RETENTION" envDefault:"24h" min:"1s" help:"How long a completed execution is remembered and replayed to retries; a later retry executes again." want:"a Go duration >= 1s such as 24h or 90m"`
	// IdempotencyLease is how long an execution in progress holds its key;
	// 0 means UpstreamResponseHeaderTimeout + 10s (see
	// [Config.IdempotencyLeaseOrDefault]).
	IdempotencyLease time.Duration `env:"TRACECAR_IDEMPOTENCY_LEASE" envDefault:"0s" help:"How long an execution in progress holds its key; 0 = TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT + 10s." want:"0 or a Go duration >= 1s such as 40s"`
	// IdempotencyMaxRequestBytes bounds the body of a request under a key,
	// buffered to fingerprint it; a larger one gets 413.
	IdempotencyMaxRequestBytes int64 `env:"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES" envDefault:"1048576" min:"1" max:"1073741824" help:"Largest body of a request under a key, buffered to fingerprint it; larger ones get 413."`
	// IdempotencyMaxResponseBytes bounds the response body stored for
	// replay; a larger one is recorded as executed but not replayable. 0
	// stores no body: every execution is recorded as not replayable.
	IdempotencyMaxResponseBytes int64 `env:"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES" envDefault:"1048576" min:"0" max:"1073741824" help:"Largest response body stored for replay; a larger one is recorded as executed, not replayable; 0 = never replay bodies."`
	// IdempotencyCacheBytes is the memory store's budget for completed
	// records, at least IdempotencyMaxResponseBytes with that store.
	IdempotencyCacheBytes int64 `env:"TRACECAR_IDEMPOTENCY_CACHE_BYTES" envDefault:"67108864" min:"1048576" max:"1099511627776" help:"Memory store budget for completed records, in bytes; beyond it, records are evicted early and counted." want:"an integer 1048576-1099511627776, at least TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES"`
	// IdempotencyMaxInFlight bounds the keys the memory store holds in
	// progress at once; beyond it, new keys are refused as by a store
	// that is down.
	IdempotencyMaxInFlight int `env:"TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT" envDefault:"10000" min:"1" max:"10000000" help:"Most keys the memory store holds in progress at once; beyond it, new keys are refused as by a store that is down."`
	// IdempotencyPrincipalHeaders lists, canonical and without duplicates,
	// the request headers whose values, hashed, identify the client that
	// owns a key. It is empty, not nil, for "none": one shared principal.
	IdempotencyPrincipalHeaders []string `env:"TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS" envDefault:"Authorization" help:"Headers whose values, hashed and never stored, identify the client owning a key; none = all clients share keys." want:"a comma-separated list of header names such as Authorization,X-Api-Key, or none"`
	// IdempotencyFingerprintHeaders lists, canonical and without
	// duplicates, the request headers compared, with the method, path,
	// query and body, to tell a retry from another request reusing its
	// key. It is empty, not nil, for "none".
	IdempotencyFingerprintHeaders []string `env:"TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS" envDefault:"Content-Type" help:"Headers compared, with method, path, query and body, to tell a retry from another request reusing its key." want:"a comma-separated list of header names such as Content-Type,Content-Encoding, or none"`
	// IdempotencyReleaseStatuses lists, sorted and without duplicates, the
	// response statuses after which the key is released, so that a retry
	// executes again. It is empty, not nil, for "none".
	IdempotencyReleaseStatuses []int `env:"TRACECAR_IDEMPOTENCY_RELEASE_STATUSES" envDefault:"429" help:"Response statuses after which the key is released so a retry executes again; only for statuses that provably changed nothing." want:"a comma-separated list of status codes 400-599 and ranges such as 429,503, or none"`
	// IdempotencyWait is how long a retry of a request still executing
	// waits for its result, then replayed; 0 answers 409 at once.
	IdempotencyWait time.Duration `env:"TRACECAR_IDEMPOTENCY_WAIT" envDefault:"0s" help:"How long a retry of a request still executing waits for its result before getting 409; 0 = 409 at once."`

	// OTel holds the checked OTEL_* settings.
	OTel OTel `env:"-"`

	// Unknown lists, sorted, the TRACECAR_* variables in the environment that
	// tracecar does not know, most likely misspelt; worth a warning.
	Unknown []string `env:"-"`
}

// Log formats accepted by TRACECAR_LOG_FORMAT.
const (
	LogFormatJSON = "json"
	LogFormatText = "text"
)

// Load reads the configuration from environ, a map of variable names to
// values (main passes env.ToMap(os.Environ())). A nil map is an empty
// environment. On a bad or missing value it returns an *[Error] naming the
// first bad variable in declaration order: the TRACECAR_* variables in the
// order [Usage] lists them, then the OTEL_* ones.
func Load(environ map[string]string) (*Config, error) {
	if environ == nil {
		// env.Options treats a nil Environment as "read os.Environ()".
		environ = map[string]string{}
	}
	var c Config
	if err := parse(&c, environ); err != nil {
		return nil, err
	}
	otel, err := loadOTel(environ)
	if err != nil {
		return nil, err
	}
	c.OTel = *otel
	c.Unknown = unknownVars(environ)
	return &c, nil
}

// parse fills c with env and then checks every field in declaration order,
// so the error returned is that of the first bad variable. A field's checks
// run in this order: its tags, its custom check, then its relations to the
// fields declared before it.
func parse(c *Config, environ map[string]string) error {
	envErrs, err := envErrors(env.ParseWithOptions(c, env.Options{Environment: environ, FuncMap: parsers}))
	if err != nil {
		return err
	}
	v := reflect.ValueOf(c).Elem()
	for _, f := range fieldsOf(v.Type()) {
		raw := f.raw(environ)
		if e, ok := envErrs[f.key]; ok {
			return f.envError(e, raw, custom[f.key], c)
		}
		if e := f.check(v.Field(f.index), raw); e != nil {
			return e
		}
		if check, ok := custom[f.key]; ok {
			if e := check(c, f, raw); e != nil {
				return e
			}
		}
		if check, ok := relations[f.key]; ok {
			if e := check(c, f, raw); e != nil {
				return e
			}
		}
	}
	return nil
}

// envErrors sorts the errors of env.ParseWithOptions by the variable they
// concern. Any other error (a bug in the tags) is returned as is.
func envErrors(err error) (map[string]error, error) {
	if err == nil {
		return nil, nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return nil, fmt.Errorf("config: %w", err)
	}
	byKey := make(map[string]error, len(agg.Errors))
	for _, e := range agg.Errors {
		key := ""
		var (
			pe  env.ParseError
			npe env.NoParserError
			vns env.VarIsNotSetError
			eve env.EmptyVarError
		)
		switch {
		case errors.As(e, &pe):
			key = keyOfField(pe.Name)
		case errors.As(e, &npe):
			key = keyOfField(npe.Name)
		case errors.As(e, &vns):
			key = vns.Key
		case errors.As(e, &eve):
			key = eve.Key
		}
		if key == "" {
			return nil, fmt.Errorf("config: %w", e)
		}
		if _, seen := byKey[key]; !seen {
			byKey[key] = e
		}
	}
	return byKey, nil
}

// keyOfField returns the variable of the Config or otelEnv field named name.
func keyOfField(name string) string {
	for _, t := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[otelEnv]()} {
		if sf, ok := t.FieldByName(name); ok {
			k, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
			return k
		}
	}
	return ""
}

// unknownVars lists the TRACECAR_* names in environ that no field declares.
func unknownVars(environ map[string]string) []string {
	known := map[string]bool{}
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		known[f.key] = true
	}
	var unknown []string
	for k := range environ {
		if strings.HasPrefix(k, "TRACECAR_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	return unknown
}
