package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const upstream = "http://127.0.0.1:8080"

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLoadDefaults(t *testing.T) {
	got, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Upstream:                      mustURL(t, upstream),
		InboundAddr:                   ":15006",
		AdminAddr:                     "127.0.0.1:15000",
		CorrelationHeader:             "X-Correlation-ID",
		CorrelationMaxLen:             128,
		TrustIncomingTrace:            true,
		LogLevel:                      slog.LevelInfo,
		LogFormat:                     LogFormatJSON,
		AccessLog:                     true,
		DrainDelay:                    0,
		DrainTimeout:                  25 * time.Second,
		MaxHeaderBytes:                65536,
		MaxBodyBytes:                  0,
		ReadHeaderTimeout:             10 * time.Second,
		IdleTimeout:                   120 * time.Second,
		UpstreamDialTimeout:           5 * time.Second,
		UpstreamResponseHeaderTimeout: 30 * time.Second,
		UpstreamIdleConnTimeout:       90 * time.Second,
		UpstreamMaxIdleConns:          1024,
		GRPCMessageEvents:             64,
		StreamIdleTimeout:             0,
		EgressEnabled:                 true,
		EgressAddr:                    "127.0.0.1:15001",
		EgressGRPCAddr:                "127.0.0.1:15002",
		EgressAllow:                   nil,
		EgressMaxConcurrent:           1024,
		EgressTimeout:                 30 * time.Second,
		EgressSerialInference:         false,
		BreakerEnabled:                true,
		BreakerConsecutiveFailures:    5,
		BreakerFailureRatio:           0.5,
		BreakerMinRequests:            20,
		BreakerWindow:                 10 * time.Second,
		BreakerOpenTimeout:            5 * time.Second,
		BreakerMaxOpenTimeout:         60 * time.Second,
		BreakerHalfOpenProbes:         1,
		BreakerSuccessesToClose:       2,
		BreakerFailureStatuses:        []int{500, 502, 503, 504},
		BreakerMaxUpstreams:           1024,
		StitchMaxEntries:              4096,
		StitchTTL:                     30 * time.Second,
		IdempotencyEnabled:            true,
		IdempotencyRoutes:             nil,
		IdempotencyStore:              IdempotencyStoreMemory,
		RedisURL:                      "",
		IdempotencyRetention:          24 * time.Hour,
		IdempotencyLease:              0,
		IdempotencyMaxRequestBytes:    1 << 20,
		IdempotencyMaxResponseBytes:   1 << 20,
		IdempotencyCacheBytes:         64 << 20,
		IdempotencyMaxInFlight:        10000,
		IdempotencyPrincipalHeaders:   []string{"Authorization"},
		IdempotencyFingerprintHeaders: []string{"Content-Type"},
		IdempotencyReleaseStatuses:    []int{429},
		IdempotencyWait:               0,
		OTel: OTel{
			Protocol:              ProtocolHTTPProtobuf,
			Sampler:               SamplerParentBasedAlwaysOn,
			SamplerArg:            1,
			Propagators:           []string{PropagatorTraceContext, PropagatorBaggage},
			SDKDisabled:           false,
			BSPScheduleDelay:      5 * time.Second,
			BSPExportTimeout:      30 * time.Second,
			BSPMaxQueueSize:       2048,
			BSPMaxExportBatchSize: 512,
		},
		Unknown: nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoadDefaultsMatchTags checks every field's default value against its
// envDefault tag, the text Usage prints.
func TestLoadDefaultsMatchTags(t *testing.T) {
	c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream})
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(c).Elem()
	for _, f := range fieldsOf(v.Type()) {
		if !f.hasDef {
			if !f.required {
				t.Errorf("%s has neither a default nor required", f.key)
			}
			continue
		}
		switch got := v.Field(f.index).Interface().(type) {
		case time.Duration:
			if d, err := time.ParseDuration(f.def); err != nil || got != d {
				t.Errorf("%s = %v, tag says %q", f.key, got, f.def)
			}
		case slog.Level:
			if s := strings.ToLower(got.String()); s != f.def {
				t.Errorf("%s = %q, tag says %q", f.key, s, f.def)
			}
		case []string:
			if s := strings.Join(got, ","); s != f.def {
				t.Errorf("%s = %q, tag says %q", f.key, s, f.def)
			}
		case []IdempotencyRoute:
			texts := make([]string, len(got))
			for i, r := range got {
				texts[i] = r.String()
			}
			if s := strings.Join(texts, ","); s != f.def {
				t.Errorf("%s = %q, tag says %q", f.key, s, f.def)
			}
		case []int:
			texts := make([]string, len(got))
			for i, n := range got {
				texts[i] = strconv.Itoa(n)
			}
			if s := strings.Join(texts, ","); s != f.def {
				t.Errorf("%s = %q, tag says %q", f.key, s, f.def)
			}
		default:
			if s := fmt.Sprint(got); s != f.def {
				t.Errorf("%s = %q, tag says %q", f.key, s, f.def)
			}
		}
	}
}

// everyVar sets every variable to a value other than its default.
var everyVar = map[string]string{
	"TRACECAR_UPSTREAM":                         "https://app.internal:8443/base",
	"TRACECAR_INBOUND_ADDR":                     "0.0.0.0:8000",
	"TRACECAR_ADMIN_ADDR":                       "[::1]:9000",
	"TRACECAR_CORRELATION_HEADER":               "x-request-id",
	"TRACECAR_CORRELATION_MAX_LEN":              "64",
	"TRACECAR_TRUST_INCOMING_TRACE":             "false",
	"TRACECAR_LOG_LEVEL":                        "DEBUG",
	"TRACECAR_LOG_FORMAT":                       "Text",
	"TRACECAR_ACCESS_LOG":                       "false",
	"TRACECAR_DRAIN_DELAY":                      "5s",
	"TRACECAR_DRAIN_TIMEOUT":                    "1m",
	"TRACECAR_MAX_HEADER_BYTES":                 "1024",
	"TRACECAR_MAX_BODY_BYTES":                   "10485760",
	"TRACECAR_READ_HEADER_TIMEOUT":              "2s",
	"TRACECAR_IDLE_TIMEOUT":                     "500ms",
	"TRACECAR_UPSTREAM_DIAL_TIMEOUT":            "250ms",
	"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0s",
	"TRACECAR_UPSTREAM_IDLE_CONN_TIMEOUT":       "1h",
	"TRACECAR_UPSTREAM_MAX_IDLE_CONNS":          "65535",
	"TRACECAR_GRPC_MESSAGE_EVENTS":              "0",
	"TRACECAR_ADMIN_PPROF":                      "true",
	"TRACECAR_TLS_CERT_FILE":                    "/etc/tracecar/tls.crt",
	"TRACECAR_TLS_KEY_FILE":                     "/etc/tracecar/tls.key",
	"TRACECAR_GRPC_MAX_RECV_MESSAGE_BYTES":      "4194304",
	"TRACECAR_STREAM_IDLE_TIMEOUT":              "1m30s",
	"TRACECAR_EGRESS_ENABLED":                   "false",
	"TRACECAR_EGRESS_ADDR":                      "0.0.0.0:3128",
	"TRACECAR_EGRESS_GRPC_ADDR":                 "0.0.0.0:3129",
	"TRACECAR_EGRESS_ALLOW":                     " API.Example.com:0443, *.Internal ,,10.0.0.0/8,[::1]:443,api.example.com:443",
	"TRACECAR_EGRESS_MAX_CONCURRENT":            "1000000",
	"TRACECAR_EGRESS_TIMEOUT":                   "0s",
	"TRACECAR_EGRESS_SERIAL_INFERENCE":          "true",
	"TRACECAR_BREAKER_ENABLED":                  "false",
	"TRACECAR_BREAKER_CONSECUTIVE_FAILURES":     "0",
	"TRACECAR_BREAKER_FAILURE_RATIO":            "0",
	"TRACECAR_BREAKER_MIN_REQUESTS":             "1",
	"TRACECAR_BREAKER_WINDOW":                   "100ms",
	"TRACECAR_BREAKER_OPEN_TIMEOUT":             "1ms",
	"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT":         "1ms",
	"TRACECAR_BREAKER_HALF_OPEN_PROBES":         "1000",
	"TRACECAR_BREAKER_SUCCESSES_TO_CLOSE":       "1000",
	"TRACECAR_BREAKER_FAILURE_STATUSES":         "599, 500-503,429",
	"TRACECAR_BREAKER_MAX_UPSTREAMS":            "1",
	"TRACECAR_STITCH_MAX_ENTRIES":               "10000000",
	"TRACECAR_STITCH_TTL":                       "1ms",
	"TRACECAR_IDEMPOTENCY_ENABLED":              "false",
	"TRACECAR_IDEMPOTENCY_ROUTES":               " post /payments/*=Required, PATCH /orders/* = optional,* /admin=off,,/*=optional ",
	"TRACECAR_IDEMPOTENCY_STORE":                "Redis",
	"TRACECAR_REDIS_URL":                        "rediss://:s3cret@redis.internal:6380/2",
	"TRACECAR_IDEMPOTENCY_RETENTION":            "1s",
	"TRACECAR_IDEMPOTENCY_LEASE":                "2m",
	"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES":    "1073741824",
	"TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES":   "0",
	"TRACECAR_IDEMPOTENCY_CACHE_BYTES":          "1048576",
	"TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT":        "10000000",
	"TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS":    "x-api-key , authorization,X-API-KEY",
	"TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS":  "none",
	"TRACECAR_IDEMPOTENCY_RELEASE_STATUSES":     "503,429,408",
	"TRACECAR_IDEMPOTENCY_WAIT":                 "5s",
	"OTEL_SERVICE_NAME":                         "orders",
	"OTEL_RESOURCE_ATTRIBUTES":                  "deployment.environment=dev",
	"OTEL_EXPORTER_OTLP_ENDPOINT":               "http://127.0.0.1:4317",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":        "https://collector:4318/v1/traces",
	"OTEL_EXPORTER_OTLP_PROTOCOL":               "http/protobuf",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":        " GRPC ",
	"OTEL_EXPORTER_OTLP_HEADERS":                "authorization=Bearer%20x",
	"OTEL_TRACES_SAMPLER":                       "ParentBased_TraceIDRatio",
	"OTEL_TRACES_SAMPLER_ARG":                   " 0.25 ",
	"OTEL_PROPAGATORS":                          "baggage, tracecontext,baggage",
	"OTEL_SDK_DISABLED":                         "TRUE",
	"OTEL_BSP_SCHEDULE_DELAY":                   "250",
	"OTEL_BSP_EXPORT_TIMEOUT":                   " 1500 ",
	"OTEL_BSP_MAX_QUEUE_SIZE":                   "1048576",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE":            "1048576",
	"TRACECAR_UPSTREM":                          "typo",
	"TRACECAR_A_TYPO":                           "typo",
	"PATH":                                      "/usr/bin",
}

func TestLoadEveryVariable(t *testing.T) {
	for _, ty := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[otelEnv]()} {
		for _, f := range fieldsOf(ty) {
			if _, ok := everyVar[f.key]; !ok {
				t.Fatalf("everyVar misses %s", f.key)
			}
		}
	}
	got, err := Load(everyVar)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Upstream:                      mustURL(t, "https://app.internal:8443/base"),
		InboundAddr:                   "0.0.0.0:8000",
		AdminPprof:                    true,
		TLSCertFile:                   "/etc/tracecar/tls.crt",
		TLSKeyFile:                    "/etc/tracecar/tls.key",
		AdminAddr:                     "[::1]:9000",
		CorrelationHeader:             "x-request-id",
		CorrelationMaxLen:             64,
		TrustIncomingTrace:            false,
		LogLevel:                      slog.LevelDebug,
		LogFormat:                     LogFormatText,
		AccessLog:                     false,
		DrainDelay:                    5 * time.Second,
		DrainTimeout:                  time.Minute,
		MaxHeaderBytes:                1024,
		MaxBodyBytes:                  10 << 20,
		ReadHeaderTimeout:             2 * time.Second,
		IdleTimeout:                   500 * time.Millisecond,
		UpstreamDialTimeout:           250 * time.Millisecond,
		UpstreamResponseHeaderTimeout: 0,
		UpstreamIdleConnTimeout:       time.Hour,
		UpstreamMaxIdleConns:          65535,
		GRPCMessageEvents:             0,
		GRPCMaxRecvMessageBytes:       4 << 20,
		StreamIdleTimeout:             90 * time.Second,
		EgressEnabled:                 false,
		EgressAddr:                    "0.0.0.0:3128",
		EgressGRPCAddr:                "0.0.0.0:3129",
		EgressAllow:                   []string{"api.example.com:443", "*.internal", "10.0.0.0/8", "[::1]:443"},
		EgressMaxConcurrent:           1000000,
		EgressTimeout:                 0,
		EgressSerialInference:         true,
		BreakerEnabled:                false,
		BreakerConsecutiveFailures:    0,
		BreakerFailureRatio:           0,
		BreakerMinRequests:            1,
		BreakerWindow:                 100 * time.Millisecond,
		BreakerOpenTimeout:            time.Millisecond,
		BreakerMaxOpenTimeout:         time.Millisecond,
		BreakerHalfOpenProbes:         1000,
		BreakerSuccessesToClose:       1000,
		BreakerFailureStatuses:        []int{429, 500, 501, 502, 503, 599},
		BreakerMaxUpstreams:           1,
		StitchMaxEntries:              10000000,
		StitchTTL:                     time.Millisecond,
		IdempotencyEnabled:            false,
		IdempotencyRoutes: []IdempotencyRoute{
			{Method: "POST", Path: "/payments/*", Mode: IdempotencyRequired},
			{Method: "PATCH", Path: "/orders/*", Mode: IdempotencyOptional},
			{Method: "", Path: "/admin", Mode: IdempotencyOff},
			{Method: "", Path: "/*", Mode: IdempotencyOptional},
		},
		IdempotencyStore:              IdempotencyStoreRedis,
		RedisURL:                      "rediss://:s3cret@redis.internal:6380/2",
		IdempotencyRetention:          time.Second,
		IdempotencyLease:              2 * time.Minute,
		IdempotencyMaxRequestBytes:    1 << 30,
		IdempotencyMaxResponseBytes:   0,
		IdempotencyCacheBytes:         1 << 20,
		IdempotencyMaxInFlight:        10000000,
		IdempotencyPrincipalHeaders:   []string{"X-Api-Key", "Authorization"},
		IdempotencyFingerprintHeaders: []string{},
		IdempotencyReleaseStatuses:    []int{408, 429, 503},
		IdempotencyWait:               5 * time.Second,
		OTel: OTel{
			Protocol:              ProtocolGRPC,
			Sampler:               SamplerParentBasedTraceIDRatio,
			SamplerArg:            0.25,
			Propagators:           []string{PropagatorBaggage, PropagatorTraceContext},
			SDKDisabled:           true,
			BSPScheduleDelay:      250 * time.Millisecond,
			BSPExportTimeout:      1500 * time.Millisecond,
			BSPMaxQueueSize:       1 << 20,
			BSPMaxExportBatchSize: 1 << 20,
		},
		Unknown: []string{"TRACECAR_A_TYPO", "TRACECAR_UPSTREM"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("every variable:\n got %+v\nwant %+v", got, want)
	}
}

// withBSPDefaults fills the zero OTEL_BSP_* settings of o with the
// specification's defaults.
func withBSPDefaults(o OTel) OTel {
	if o.BSPScheduleDelay == 0 {
		o.BSPScheduleDelay = 5000 * time.Millisecond
	}
	if o.BSPExportTimeout == 0 {
		o.BSPExportTimeout = 30000 * time.Millisecond
	}
	if o.BSPMaxQueueSize == 0 {
		o.BSPMaxQueueSize = 2048
	}
	if o.BSPMaxExportBatchSize == 0 {
		o.BSPMaxExportBatchSize = 512
	}
	return o
}

func TestLoadOTel(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want OTel
	}{
		{
			name: "protocol grpc, traces protocol unset",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: OTel{Protocol: ProtocolGRPC, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "traces protocol overrides protocol",
			env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "ratio sampler without arg means 1",
			env:  map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerTraceIDRatio, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "ratio 0 and 1e-3 style numbers",
			env:  map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1e-3"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerTraceIDRatio, SamplerArg: 0.001,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "arg of a non-ratio sampler is ignored, as the SDK does",
			env:  map[string]string{"OTEL_TRACES_SAMPLER": "always_off", "OTEL_TRACES_SAMPLER_ARG": "not a number"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerAlwaysOff, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "propagators none",
			env:  map[string]string{"OTEL_PROPAGATORS": "none"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{}},
		},
		{
			name: "propagators with spaces and empty entries",
			env:  map[string]string{"OTEL_PROPAGATORS": " tracecontext ,, "},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{"tracecontext"}},
		},
		{
			name: "empty values mean defaults",
			env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "", "OTEL_TRACES_SAMPLER": "",
				"OTEL_PROPAGATORS": "", "OTEL_SDK_DISABLED": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "",
				"OTEL_BSP_SCHEDULE_DELAY": "", "OTEL_BSP_EXPORT_TIMEOUT": "", "OTEL_BSP_MAX_QUEUE_SIZE": "",
				"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": ""},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "sdk disabled false",
			env:  map[string]string{"OTEL_SDK_DISABLED": "False"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators: []string{"tracecontext", "baggage"}},
		},
		{
			name: "batch span processor durations are milliseconds",
			env:  map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BSP_EXPORT_TIMEOUT": "2000"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators:      []string{"tracecontext", "baggage"},
				BSPScheduleDelay: 100 * time.Millisecond, BSPExportTimeout: 2 * time.Second},
		},
		{
			name: "batch span processor smallest values",
			env: map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "1", "OTEL_BSP_EXPORT_TIMEOUT": "1",
				"OTEL_BSP_MAX_QUEUE_SIZE": "1", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators:      []string{"tracecontext", "baggage"},
				BSPScheduleDelay: time.Millisecond, BSPExportTimeout: time.Millisecond,
				BSPMaxQueueSize: 1, BSPMaxExportBatchSize: 1},
		},
		{
			name: "batch size equal to queue size, spaces ignored",
			env:  map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": " 100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100 "},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators:     []string{"tracecontext", "baggage"},
				BSPMaxQueueSize: 100, BSPMaxExportBatchSize: 100},
		},
		{
			name: "largest durations",
			env: map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "2147483647",
				"OTEL_BSP_EXPORT_TIMEOUT": "2147483647"},
			want: OTel{Protocol: ProtocolHTTPProtobuf, Sampler: SamplerParentBasedAlwaysOn, SamplerArg: 1,
				Propagators:      []string{"tracecontext", "baggage"},
				BSPScheduleDelay: 2147483647 * time.Millisecond, BSPExportTimeout: 2147483647 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["TRACECAR_UPSTREAM"] = upstream
			c, err := Load(tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := withBSPDefaults(tt.want); !reflect.DeepEqual(c.OTel, want) {
				t.Errorf("OTel = %+v, want %+v", c.OTel, want)
			}
		})
	}
}

func TestLoadAcceptsEdgeValues(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(c *Config) bool
	}{
		{"TRACECAR_UPSTREAM", "http://[::1]:8080", func(c *Config) bool { return c.Upstream.Host == "[::1]:8080" }},
		{"TRACECAR_UPSTREAM", "http://app", func(c *Config) bool { return c.Upstream.Port() == "" }},
		{"TRACECAR_UPSTREAM", "HTTPS://App:65535/x/", func(c *Config) bool {
			return c.Upstream.Scheme == "https" && c.Upstream.Path == "/x/"
		}},
		{"TRACECAR_INBOUND_ADDR", ":0", func(c *Config) bool { return c.InboundAddr == ":0" }},
		{"TRACECAR_INBOUND_ADDR", "localhost:65535", func(c *Config) bool { return c.InboundAddr == "localhost:65535" }},
		{"TRACECAR_ADMIN_ADDR", "[fe80::1%eth0]:15000", func(c *Config) bool { return c.AdminAddr == "[fe80::1%eth0]:15000" }},
		{"TRACECAR_CORRELATION_MAX_LEN", "1", func(c *Config) bool { return c.CorrelationMaxLen == 1 }},
		{"TRACECAR_CORRELATION_MAX_LEN", "1024", func(c *Config) bool { return c.CorrelationMaxLen == 1024 }},
		{"TRACECAR_MAX_HEADER_BYTES", "16777216", func(c *Config) bool { return c.MaxHeaderBytes == 16<<20 }},
		{"TRACECAR_TRUST_INCOMING_TRACE", "0", func(c *Config) bool { return !c.TrustIncomingTrace }},
		{"TRACECAR_LOG_LEVEL", "warn", func(c *Config) bool { return c.LogLevel == slog.LevelWarn }},
		{"TRACECAR_LOG_LEVEL", "error", func(c *Config) bool { return c.LogLevel == slog.LevelError }},
		{"TRACECAR_READ_HEADER_TIMEOUT", "1ms", func(c *Config) bool { return c.ReadHeaderTimeout == time.Millisecond }},
		{"TRACECAR_DRAIN_TIMEOUT", "0", func(c *Config) bool { return c.DrainTimeout == 0 }},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2048", func(c *Config) bool { return c.OTel.BSPMaxExportBatchSize == 2048 }},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "512", func(c *Config) bool { return c.OTel.BSPMaxQueueSize == 512 }},
		{"OTEL_BSP_MAX_QUEUE_SIZE", "+4096", func(c *Config) bool { return c.OTel.BSPMaxQueueSize == 4096 }},
		{"OTEL_BSP_SCHEDULE_DELAY", "007", func(c *Config) bool { return c.OTel.BSPScheduleDelay == 7*time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			env := map[string]string{"TRACECAR_UPSTREAM": upstream, tt.key: tt.value}
			c, err := Load(env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("%s=%q loaded as %+v", tt.key, tt.value, c)
			}
		})
	}
}

const (
	wantURL      = "want an absolute http:// or https:// URL such as http://127.0.0.1:8080"
	wantAddr     = "want host:port with port 0-65535"
	wantDuration = "want a Go duration >= 0 such as 500ms, 30s or 2m"
	wantPositive = "want a Go duration >= 1ms such as 500ms, 30s or 2m"
	wantHeader   = "want an HTTP header name (RFC 9110 token), not hop-by-hop or trace context, such as X-Correlation-ID"
	wantSampler  = "want one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
	wantProp     = "want a comma-separated list of tracecontext, baggage or none"
	wantDelay    = "want an integer of milliseconds 1-2147483647 such as 5000"
	wantTimeout  = "want an integer of milliseconds 1-2147483647 such as 30000"
	wantBatch    = "want an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string // TRACECAR_UPSTREAM is added unless present
		want string
	}{
		// TRACECAR_UPSTREAM
		{"missing upstream", map[string]string{"TRACECAR_UPSTREAM": "\x00unset"},
			"TRACECAR_UPSTREAM: not set; " + wantURL},
		{"empty upstream", map[string]string{"TRACECAR_UPSTREAM": ""},
			"TRACECAR_UPSTREAM: empty; " + wantURL},
		{"unparsable URL", map[string]string{"TRACECAR_UPSTREAM": "http://[::1"},
			`TRACECAR_UPSTREAM="http://[::1": not a URL: missing ']' in host; ` + wantURL},
		{"unparsable port", map[string]string{"TRACECAR_UPSTREAM": "http://app:80a"},
			`TRACECAR_UPSTREAM="http://app:80a": not a URL: invalid port ":80a" after host; ` + wantURL},
		{"URL without host", map[string]string{"TRACECAR_UPSTREAM": "http:///orders"},
			`TRACECAR_UPSTREAM="http:///orders": missing host; ` + wantURL},
		{"ftp scheme", map[string]string{"TRACECAR_UPSTREAM": "ftp://example.com/"},
			`TRACECAR_UPSTREAM="ftp://example.com/": scheme "ftp" not supported; ` + wantURL},
		{"no scheme, host:port", map[string]string{"TRACECAR_UPSTREAM": "localhost:8080"},
			`TRACECAR_UPSTREAM="localhost:8080": missing http:// before host:port; ` + wantURL},
		{"relative URL", map[string]string{"TRACECAR_UPSTREAM": "/orders"},
			`TRACECAR_UPSTREAM="/orders": missing scheme; ` + wantURL},
		{"upstream port out of range", map[string]string{"TRACECAR_UPSTREAM": "http://127.0.0.1:99999"},
			`TRACECAR_UPSTREAM="http://127.0.0.1:99999": port out of range; ` + wantURL},
		{"upstream port 0", map[string]string{"TRACECAR_UPSTREAM": "http://127.0.0.1:0"},
			`TRACECAR_UPSTREAM="http://127.0.0.1:0": port out of range; ` + wantURL},
		{"upstream query", map[string]string{"TRACECAR_UPSTREAM": "http://app/?a=1"},
			`TRACECAR_UPSTREAM="http://app/?a=1": query not allowed; ` + wantURL},
		{"upstream fragment", map[string]string{"TRACECAR_UPSTREAM": "http://app/#top"},
			`TRACECAR_UPSTREAM="http://app/#top": fragment not allowed; ` + wantURL},
		{"upstream credentials are masked", map[string]string{"TRACECAR_UPSTREAM": "http://bob:s3cret@app/"},
			`TRACECAR_UPSTREAM="http://xxxxx@app/": user info not allowed; ` + wantURL},
		{"credentials masked in unparsable URL", map[string]string{"TRACECAR_UPSTREAM": "http://bob:s3cret@app:x/"},
			`TRACECAR_UPSTREAM="http://xxxxx@app:x/": not a URL: invalid port ":x" after host; ` + wantURL},

		// Addresses
		{"port 99999", map[string]string{"TRACECAR_INBOUND_ADDR": "1.2.3.4:99999"},
			`TRACECAR_INBOUND_ADDR="1.2.3.4:99999": port out of range; ` + wantAddr},
		{"addr without port", map[string]string{"TRACECAR_ADMIN_ADDR": "127.0.0.1"},
			`TRACECAR_ADMIN_ADDR="127.0.0.1": missing port in address; ` + wantAddr},
		{"addr empty port", map[string]string{"TRACECAR_ADMIN_ADDR": "127.0.0.1:"},
			`TRACECAR_ADMIN_ADDR="127.0.0.1:": missing port; ` + wantAddr},
		{"addr named port", map[string]string{"TRACECAR_INBOUND_ADDR": ":http"},
			`TRACECAR_INBOUND_ADDR=":http": port not a number; ` + wantAddr},
		{"addr negative port", map[string]string{"TRACECAR_INBOUND_ADDR": ":-1"},
			`TRACECAR_INBOUND_ADDR=":-1": port not a number; ` + wantAddr},
		{"addr IPv6 without brackets", map[string]string{"TRACECAR_INBOUND_ADDR": "::1:80"},
			`TRACECAR_INBOUND_ADDR="::1:80": too many colons in address; ` + wantAddr},
		{"addr bad host", map[string]string{"TRACECAR_INBOUND_ADDR": "my host:80"},
			`TRACECAR_INBOUND_ADDR="my host:80": invalid host; ` + wantAddr},

		// Correlation
		{"bad header name", map[string]string{"TRACECAR_CORRELATION_HEADER": "X Correlation"},
			`TRACECAR_CORRELATION_HEADER="X Correlation": not a header name; ` + wantHeader},
		{"header name with colon", map[string]string{"TRACECAR_CORRELATION_HEADER": "X-Id:"},
			`TRACECAR_CORRELATION_HEADER="X-Id:": not a header name; ` + wantHeader},
		{"trace context header", map[string]string{"TRACECAR_CORRELATION_HEADER": "traceparent"},
			`TRACECAR_CORRELATION_HEADER="traceparent": reserved header name; ` + wantHeader},
		{"hop-by-hop header", map[string]string{"TRACECAR_CORRELATION_HEADER": "Connection"},
			`TRACECAR_CORRELATION_HEADER="Connection": reserved header name; ` + wantHeader},
		{"max len 0", map[string]string{"TRACECAR_CORRELATION_MAX_LEN": "0"},
			`TRACECAR_CORRELATION_MAX_LEN="0": out of range; want an integer 1-1024`},
		{"max len 1025", map[string]string{"TRACECAR_CORRELATION_MAX_LEN": "1025"},
			`TRACECAR_CORRELATION_MAX_LEN="1025": out of range; want an integer 1-1024`},

		// Booleans and words
		{"bool yes", map[string]string{"TRACECAR_TRUST_INCOMING_TRACE": "yes"},
			`TRACECAR_TRUST_INCOMING_TRACE="yes": not true or false; want true or false`},
		{"log level", map[string]string{"TRACECAR_LOG_LEVEL": "verbose"},
			`TRACECAR_LOG_LEVEL="verbose": unknown value; want one of debug, info, warn or error`},
		{"log level with offset", map[string]string{"TRACECAR_LOG_LEVEL": "info+2"},
			`TRACECAR_LOG_LEVEL="info+2": unknown value; want one of debug, info, warn or error`},
		{"log format", map[string]string{"TRACECAR_LOG_FORMAT": "logfmt"},
			`TRACECAR_LOG_FORMAT="logfmt": unknown value; want one of json or text`},

		// Durations
		{"negative duration", map[string]string{"TRACECAR_DRAIN_TIMEOUT": "-5s"},
			`TRACECAR_DRAIN_TIMEOUT="-5s": negative duration; ` + wantDuration},
		{"negative drain delay", map[string]string{"TRACECAR_DRAIN_DELAY": "-1ns"},
			`TRACECAR_DRAIN_DELAY="-1ns": negative duration; ` + wantDuration},
		{"duration without unit", map[string]string{"TRACECAR_STREAM_IDLE_TIMEOUT": "5"},
			`TRACECAR_STREAM_IDLE_TIMEOUT="5": not a duration; ` + wantDuration},
		{"duration garbage", map[string]string{"TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "soon"},
			`TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT="soon": not a duration; ` + wantDuration},
		{"zero read header timeout", map[string]string{"TRACECAR_READ_HEADER_TIMEOUT": "0s"},
			`TRACECAR_READ_HEADER_TIMEOUT="0s": shorter than 1ms; ` + wantPositive},
		{"negative positive-only duration", map[string]string{"TRACECAR_UPSTREAM_DIAL_TIMEOUT": "-1s"},
			`TRACECAR_UPSTREAM_DIAL_TIMEOUT="-1s": negative duration; ` + wantPositive},

		// Integers
		{"non-numeric int", map[string]string{"TRACECAR_UPSTREAM_MAX_IDLE_CONNS": "abc"},
			`TRACECAR_UPSTREAM_MAX_IDLE_CONNS="abc": not an integer; want an integer 1-65535`},
		{"header bytes out of range", map[string]string{"TRACECAR_MAX_HEADER_BYTES": "1023"},
			`TRACECAR_MAX_HEADER_BYTES="1023": out of range; want an integer 1024-16777216`},
		{"header bytes beyond int32", map[string]string{"TRACECAR_MAX_HEADER_BYTES": "99999999999"},
			`TRACECAR_MAX_HEADER_BYTES="99999999999": out of range; want an integer 1024-16777216`},
		{"negative body bytes", map[string]string{"TRACECAR_MAX_BODY_BYTES": "-1"},
			`TRACECAR_MAX_BODY_BYTES="-1": out of range; want an integer >= 0`},
		{"body bytes with unit", map[string]string{"TRACECAR_MAX_BODY_BYTES": "10MB"},
			`TRACECAR_MAX_BODY_BYTES="10MB": not an integer; want an integer >= 0`},

		// OTEL_*
		{"unknown sampler", map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
			`OTEL_TRACES_SAMPLER="jaeger_remote": unsupported sampler; ` + wantSampler},
		{"sampler arg 1.5", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
			`OTEL_TRACES_SAMPLER_ARG="1.5": out of range; want a number from 0 to 1 such as 0.25`},
		{"sampler arg negative", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"},
			`OTEL_TRACES_SAMPLER_ARG="-0.1": out of range; want a number from 0 to 1 such as 0.25`},
		{"sampler arg NaN", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"},
			`OTEL_TRACES_SAMPLER_ARG="NaN": out of range; want a number from 0 to 1 such as 0.25`},
		{"sampler arg percent", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"},
			`OTEL_TRACES_SAMPLER_ARG="10%": not a number; want a number from 0 to 1 such as 0.25`},
		{"bad protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			`OTEL_EXPORTER_OTLP_PROTOCOL="http/json": unknown value; want one of grpc or http/protobuf`},
		{"bad traces protocol", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http"},
			`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http": unknown value; want one of grpc or http/protobuf`},
		{"bad propagator", map[string]string{"OTEL_PROPAGATORS": "tracecontext,b3"},
			`OTEL_PROPAGATORS="tracecontext,b3": unknown propagator "b3"; ` + wantProp},
		{"none with others", map[string]string{"OTEL_PROPAGATORS": "none,baggage"},
			`OTEL_PROPAGATORS="none,baggage": none cannot be combined with other propagators; ` + wantProp},
		{"only commas", map[string]string{"OTEL_PROPAGATORS": " , "},
			`OTEL_PROPAGATORS=" , ": no propagator named; ` + wantProp},
		{"sdk disabled yes", map[string]string{"OTEL_SDK_DISABLED": "yes"},
			`OTEL_SDK_DISABLED="yes": unknown value; want true or false`},
		{"endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317"},
			`OTEL_EXPORTER_OTLP_ENDPOINT="localhost:4317": missing http:// before host:port; want an absolute http:// or https:// URL such as http://127.0.0.1:4318`},
		{"traces endpoint credentials masked", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://u:p@collector:4317"},
			`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="grpc://xxxxx@collector:4317": scheme "grpc" not supported; want an absolute http:// or https:// URL such as http://127.0.0.1:4318/v1/traces`},

		// OTEL_BSP_*
		{"schedule delay not an integer", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "abc"},
			`OTEL_BSP_SCHEDULE_DELAY="abc": not an integer; ` + wantDelay},
		{"schedule delay as Go duration", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "5s"},
			`OTEL_BSP_SCHEDULE_DELAY="5s": not an integer; ` + wantDelay},
		{"schedule delay fraction", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "1.5"},
			`OTEL_BSP_SCHEDULE_DELAY="1.5": not an integer; ` + wantDelay},
		{"schedule delay 0", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "0"},
			`OTEL_BSP_SCHEDULE_DELAY="0": out of range; ` + wantDelay},
		{"schedule delay negative", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "-100"},
			`OTEL_BSP_SCHEDULE_DELAY="-100": out of range; ` + wantDelay},
		{"schedule delay too long", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "2147483648"},
			`OTEL_BSP_SCHEDULE_DELAY="2147483648": out of range; ` + wantDelay},
		{"schedule delay beyond int64", map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "99999999999999999999"},
			`OTEL_BSP_SCHEDULE_DELAY="99999999999999999999": out of range; ` + wantDelay},
		{"export timeout not an integer", map[string]string{"OTEL_BSP_EXPORT_TIMEOUT": "30s"},
			`OTEL_BSP_EXPORT_TIMEOUT="30s": not an integer; ` + wantTimeout},
		{"export timeout 0", map[string]string{"OTEL_BSP_EXPORT_TIMEOUT": "0"},
			`OTEL_BSP_EXPORT_TIMEOUT="0": out of range; ` + wantTimeout},
		{"export timeout negative", map[string]string{"OTEL_BSP_EXPORT_TIMEOUT": "-1"},
			`OTEL_BSP_EXPORT_TIMEOUT="-1": out of range; ` + wantTimeout},
		{"queue size 0", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "0"},
			`OTEL_BSP_MAX_QUEUE_SIZE="0": out of range; want an integer 1-1048576`},
		{"queue size too large", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "1048577"},
			`OTEL_BSP_MAX_QUEUE_SIZE="1048577": out of range; want an integer 1-1048576`},
		{"queue size not an integer", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "2k"},
			`OTEL_BSP_MAX_QUEUE_SIZE="2k": not an integer; want an integer 1-1048576`},
		{"batch size 0", map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="0": out of range; ` + wantBatch},
		{"batch size negative", map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "-512"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="-512": out of range; ` + wantBatch},
		{"batch size not an integer", map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "many"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="many": not an integer; ` + wantBatch},
		{"batch larger than queue", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "101"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="101": larger than OTEL_BSP_MAX_QUEUE_SIZE (100); ` + wantBatch},
		{"batch larger than default queue", map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4096": larger than OTEL_BSP_MAX_QUEUE_SIZE (2048); ` + wantBatch},
		{"default batch larger than queue", map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "10"},
			`OTEL_BSP_MAX_EXPORT_BATCH_SIZE="512": larger than OTEL_BSP_MAX_QUEUE_SIZE (10); ` + wantBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadError(t, tt.env, tt.want) })
	}
}

// refusedFor maps a variable to the one whose value can make its default
// wrong, so that Load names it though it was not set.
var refusedFor = map[string]string{
	"TRACECAR_TLS_KEY_FILE":             "TRACECAR_TLS_CERT_FILE",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE":    "OTEL_BSP_MAX_QUEUE_SIZE",
	"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "TRACECAR_BREAKER_OPEN_TIMEOUT",
	"TRACECAR_REDIS_URL":                "TRACECAR_IDEMPOTENCY_STORE",
	"TRACECAR_IDEMPOTENCY_LEASE":        "TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT",
	"TRACECAR_IDEMPOTENCY_CACHE_BYTES":  "TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES",
}

// wantLoadError loads environ, with TRACECAR_UPSTREAM added unless present
// ("\x00unset" removes it), and expects exactly the error line want from
// an *Error naming one of the variables set.
func wantLoadError(t *testing.T, environ map[string]string, want string) {
	t.Helper()
	env := map[string]string{"TRACECAR_UPSTREAM": upstream}
	for k, v := range environ {
		env[k] = v
	}
	if env["TRACECAR_UPSTREAM"] == "\x00unset" {
		delete(env, "TRACECAR_UPSTREAM")
	}
	c, err := Load(env)
	if err == nil {
		t.Fatalf("Load accepted %v: %+v", environ, c)
	}
	if c != nil {
		t.Errorf("Load returned a Config with its error")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	if got := err.Error(); got != want {
		t.Errorf("error line\n got %s\nwant %s", got, want)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error spans lines: %q", err.Error())
	}
	if _, named := environ[ce.Var]; !named {
		if _, cause := environ[refusedFor[ce.Var]]; !cause {
			t.Errorf("Var = %s, not one of the variables set", ce.Var)
		}
	}
}

// TestLoadErrorOrder sets several bad variables and expects the first in
// field order, whether env or a check rejected it, on every run.
func TestLoadErrorOrder(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{ // check error before env parse error
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_INBOUND_ADDR": ":99999",
			"TRACECAR_MAX_HEADER_BYTES": "abc", "TRACECAR_LOG_LEVEL": "loud", "OTEL_TRACES_SAMPLER": "x",
		}, "TRACECAR_INBOUND_ADDR"},
		{map[string]string{ // env parse error before check error
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_LOG_LEVEL": "loud", "TRACECAR_DRAIN_TIMEOUT": "-5s",
			"TRACECAR_MAX_HEADER_BYTES": "abc",
		}, "TRACECAR_LOG_LEVEL"},
		{map[string]string{ // missing required first
			"TRACECAR_MAX_HEADER_BYTES": "abc", "OTEL_BSP_MAX_QUEUE_SIZE": "x", "OTEL_PROPAGATORS": "b3",
		}, "TRACECAR_UPSTREAM"},
		{map[string]string{ // TRACECAR_* before OTEL_*
			"TRACECAR_UPSTREAM": upstream, "OTEL_TRACES_SAMPLER": "x", "OTEL_BSP_MAX_QUEUE_SIZE": "0",
			"TRACECAR_MAX_BODY_BYTES": "-1",
		}, "TRACECAR_MAX_BODY_BYTES"},
		{map[string]string{ // OTEL_BSP_* in specification order, after the others
			"TRACECAR_UPSTREAM": upstream, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0", "OTEL_BSP_MAX_QUEUE_SIZE": "0",
			"OTEL_BSP_EXPORT_TIMEOUT": "0", "OTEL_BSP_SCHEDULE_DELAY": "0",
		}, "OTEL_BSP_SCHEDULE_DELAY"},
		{map[string]string{
			"TRACECAR_UPSTREAM": upstream, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0", "OTEL_BSP_SCHEDULE_DELAY": "x",
			"OTEL_SDK_DISABLED": "x",
		}, "OTEL_SDK_DISABLED"},
		{map[string]string{ // egress before breaker before stitching
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_STITCH_TTL": "x", "TRACECAR_BREAKER_FAILURE_STATUSES": "600",
			"TRACECAR_EGRESS_ALLOW": "a b", "TRACECAR_EGRESS_MAX_CONCURRENT": "x",
		}, "TRACECAR_EGRESS_ALLOW"},
		{map[string]string{ // a status env cannot parse, before a later check error
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_BREAKER_FAILURE_STATUSES": "5xx", "TRACECAR_STITCH_TTL": "0s",
		}, "TRACECAR_BREAKER_FAILURE_STATUSES"},
		{map[string]string{ // a bad ratio is reported as such, not as both rules off
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0",
			"TRACECAR_BREAKER_FAILURE_RATIO": "abc", "TRACECAR_BREAKER_WINDOW": "1ms",
		}, "TRACECAR_BREAKER_FAILURE_RATIO"},
		{map[string]string{ // both rules off, named before later variables
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0",
			"TRACECAR_BREAKER_FAILURE_RATIO": "0", "TRACECAR_BREAKER_WINDOW": "1ms",
		}, "TRACECAR_BREAKER_CONSECUTIVE_FAILURES"},
		{map[string]string{ // open periods before the probe count
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_BREAKER_HALF_OPEN_PROBES": "0",
			"TRACECAR_BREAKER_OPEN_TIMEOUT": "1s", "TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "999ms",
		}, "TRACECAR_BREAKER_MAX_OPEN_TIMEOUT"},
		{map[string]string{ // stitching before idempotency
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_ROUTES": "x", "TRACECAR_STITCH_TTL": "0s",
		}, "TRACECAR_STITCH_TTL"},
		{map[string]string{ // idempotency in declaration order, a routes text env cannot parse first
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_WAIT": "x", "TRACECAR_IDEMPOTENCY_RELEASE_STATUSES": "200",
			"TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS": "a b", "TRACECAR_IDEMPOTENCY_LEASE": "1ms",
			"TRACECAR_REDIS_URL": "http://x", "TRACECAR_IDEMPOTENCY_ROUTES": "GET /a", "TRACECAR_IDEMPOTENCY_STORE": "disk",
		}, "TRACECAR_IDEMPOTENCY_ROUTES"},
		{map[string]string{ // the store before the URL it requires, before later variables
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_STORE": "redis", "TRACECAR_IDEMPOTENCY_RETENTION": "0s",
		}, "TRACECAR_REDIS_URL"},
		{map[string]string{ // the default lease refused before later variables
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT": "0",
			"TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT": "0",
		}, "TRACECAR_IDEMPOTENCY_LEASE"},
		{map[string]string{ // the response cap judged with the cache budget, after it
			"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES": "1073741824",
			"TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES": "0",
		}, "TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES"},
		{map[string]string{ // OTEL_* in declaration order
			"TRACECAR_UPSTREAM": upstream, "OTEL_SDK_DISABLED": "x", "OTEL_PROPAGATORS": "x",
			"OTEL_TRACES_SAMPLER": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "x",
		}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, tt := range tests {
		for range 20 {
			_, err := Load(tt.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load(%v) = %v, want *Error", tt.env, err)
			}
			if ce.Var != tt.want {
				t.Fatalf("Load(%v) reported %s, want %s", tt.env, err, tt.want)
			}
		}
	}
}

func TestLoadNilEnvironmentIgnoresProcessEnv(t *testing.T) {
	t.Setenv("TRACECAR_UPSTREAM", upstream)
	_, err := Load(nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Var != "TRACECAR_UPSTREAM" || ce.Reason != "not set" {
		t.Fatalf("Load(nil) = %v, want TRACECAR_UPSTREAM not set", err)
	}
}

func TestErrorMessage(t *testing.T) {
	long := strings.Repeat("a", 60) + "ééééé" + strings.Repeat("b", 100)
	tests := []struct {
		err  Error
		want string
	}{
		{Error{Var: "V", Value: "x", Reason: "bad", Accepted: "y"}, `V="x": bad; want y`},
		{Error{Var: "V", Reason: "not set", Accepted: "y"}, `V: not set; want y`},
		{Error{Var: "V", Value: "a\nb\"c", Reason: "bad", Accepted: "y"}, `V="a\nb\"c": bad; want y`},
		{Error{Var: "V", Value: long, Reason: "bad", Accepted: "y"},
			`V="` + strings.Repeat("a", 60) + `éééé…": bad; want y`},
		{Error{Var: "V", Value: strings.Repeat("z", 64), Reason: "bad", Accepted: "y"},
			`V="` + strings.Repeat("z", 64) + `": bad; want y`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error()\n got %s\nwant %s", got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"http://app:8080/x":            "http://app:8080/x",
		"http://u:p@app/x":             "http://xxxxx@app/x",
		"http://u:p/w@app/x":           "http://xxxxx@app/x",
		"http://app/x?next=a@b":        "http://app/x?next=a@b",
		"no scheme u:p@app":            "no scheme u:p@app",
		"https://token@collector:4318": "https://xxxxx@collector:4318",
	}
	for in, want := range tests {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFieldNamesUnique(t *testing.T) {
	// env reports parse errors by Go field name; Load maps the name back to
	// its variable, so a name must lead back to its own variable.
	var keys []string
	for _, ty := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[otelEnv]()} {
		for _, f := range fieldsOf(ty) {
			keys = append(keys, f.key)
			if got := keyOfField(f.sf.Name); got != f.key {
				t.Errorf("keyOfField(%s) = %q, want %q", f.sf.Name, got, f.key)
			}
		}
	}
	slices.Sort(keys)
	if k := slices.Compact(slices.Clone(keys)); len(k) != len(keys) {
		t.Errorf("a variable is declared twice: %v", keys)
	}
}

// TestLoadBSPDefaultsMatchTags checks the OTEL_BSP_* defaults Load applies
// against the envDefault tags Usage prints.
func TestLoadBSPDefaultsMatchTags(t *testing.T) {
	c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{
		"OTEL_BSP_SCHEDULE_DELAY":        c.OTel.BSPScheduleDelay.Milliseconds(),
		"OTEL_BSP_EXPORT_TIMEOUT":        c.OTel.BSPExportTimeout.Milliseconds(),
		"OTEL_BSP_MAX_QUEUE_SIZE":        int64(c.OTel.BSPMaxQueueSize),
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": int64(c.OTel.BSPMaxExportBatchSize),
	}
	seen := 0
	for _, f := range fieldsOf(reflect.TypeFor[otelEnv]()) {
		n, ok := got[f.key]
		if !ok {
			continue
		}
		seen++
		if s := fmt.Sprint(n); s != f.def {
			t.Errorf("%s = %s, tag says %q", f.key, s, f.def)
		}
	}
	if seen != len(got) {
		t.Errorf("otelEnv declares %d of the %d OTEL_BSP_* variables", seen, len(got))
	}
}

func TestTLSPair(t *testing.T) {
	const want = "; want a PEM file path, with TRACECAR_TLS_CERT_FILE"
	wantLoadError(t, map[string]string{"TRACECAR_TLS_CERT_FILE": "/tls/tls.crt"},
		`TRACECAR_TLS_KEY_FILE: unset while TRACECAR_TLS_CERT_FILE is set; give both or neither`+want)
	wantLoadError(t, map[string]string{"TRACECAR_TLS_KEY_FILE": "/tls/tls.key"},
		`TRACECAR_TLS_KEY_FILE="/tls/tls.key": set without TRACECAR_TLS_CERT_FILE; give both or neither`+want)
	c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream})
	if err != nil || c.TLSCertFile != "" || c.TLSKeyFile != "" {
		t.Fatalf("default: %v %+v, want plaintext", err, c)
	}
}
