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
	InboundAddr string `env:"TRACECAR_INBOUND_ADDR" envDefault:":15006" help:"Address the inbound proxy listens on (HTTP/1.1 and h2c)." want:"host:port with port 0-65535"`
	// AdminAddr is the host:port of the admin listener.
	AdminAddr string `env:"TRACECAR_ADMIN_ADDR" envDefault:"127.0.0.1:15000" help:"Address of the admin listener (/healthz, /readyz, /metrics); keep it on loopback." want:"host:port with port 0-65535"`

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
	// StreamIdleTimeout closes a streaming response or WebSocket that moved
	// no bytes either way for this long; 0 turns it off.
	StreamIdleTimeout time.Duration `env:"TRACECAR_STREAM_IDLE_TIMEOUT" envDefault:"0s" help:"A streaming response or WebSocket with no bytes either way for this long is closed; 0 = off."`

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
// so the error returned is that of the first bad variable.
func parse(c *Config, environ map[string]string) error {
	envErrs, err := envErrors(env.ParseWithOptions(c, env.Options{Environment: environ}))
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
