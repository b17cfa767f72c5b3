package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
)

func usageText(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	Usage(&b, "sidecar")
	return b.String()
}

// TestUsageListsEveryVariable derives the variables from the struct tags
// through env itself, not through the code Usage uses, and expects each
// with its default (or "required", or the default its usage tag describes)
// and a line of meaning.
func TestUsageListsEveryVariable(t *testing.T) {
	text := usageText(t)
	params, err := env.GetFieldParamsWithOptions(&Config{}, env.Options{Environment: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	described := map[string]string{}
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		if u, ok := ty.Field(i).Tag.Lookup("usage"); ok {
			key, _, _ := strings.Cut(ty.Field(i).Tag.Get("env"), ",")
			described[key] = u
		}
	}
	if len(params) != len(fieldsOf(reflect.TypeFor[Config]())) {
		t.Fatalf("env sees %d variables, fieldsOf %d", len(params), len(fieldsOf(reflect.TypeFor[Config]())))
	}
	for _, p := range params {
		if !strings.HasPrefix(p.Key, "TRACECAR_") {
			t.Errorf("Config declares %s, outside the TRACECAR_ prefix", p.Key)
		}
		line := "\n  " + p.Key + " (default " + p.DefaultValue + ")\n        "
		if u, ok := described[p.Key]; ok {
			line = "\n  " + p.Key + " (default " + u + ")\n        "
		}
		if p.Required {
			line = "\n  " + p.Key + " (required)\n        "
		}
		if !strings.Contains(text, line) {
			t.Errorf("usage lacks %q", line)
		}
	}
	if got := strings.Count(text, "\n  TRACECAR_"); got != len(params) {
		t.Errorf("usage lists %d TRACECAR_ variables, want %d", got, len(params))
	}
}

func TestUsageHelpOnEveryField(t *testing.T) {
	for _, f := range append(fieldsOf(reflect.TypeFor[Config]()), fieldsOf(reflect.TypeFor[otelEnv]())...) {
		if f.help == "" || strings.Contains(f.help, "\n") {
			t.Errorf("%s: help tag must be one line of meaning, got %q", f.key, f.help)
		}
	}
}

func TestUsageOTelSection(t *testing.T) {
	text := usageText(t)
	i := strings.Index(text, "OpenTelemetry environment")
	if i < 0 {
		t.Fatalf("no OpenTelemetry section:\n%s", text)
	}
	otel := text[i:]
	for _, want := range []string{
		"  OTEL_SERVICE_NAME (default unknown_service:sidecar)\n",
		"  OTEL_RESOURCE_ATTRIBUTES (default none)\n",
		"  OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318, or http://localhost:4317 for grpc)\n",
		"  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (default ",
		"  OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf)\n        OTLP transport.\n        Accepts one of grpc or http/protobuf.\n",
		"  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (default OTEL_EXPORTER_OTLP_PROTOCOL)\n",
		"  OTEL_EXPORTER_OTLP_HEADERS (default none)\n",
		"  OTEL_TRACES_SAMPLER (default parentbased_always_on)\n",
		"  OTEL_TRACES_SAMPLER_ARG (default 1.0)\n",
		"  OTEL_PROPAGATORS (default tracecontext,baggage)\n",
		"  OTEL_SDK_DISABLED (default false)\n",
		"  OTEL_BSP_SCHEDULE_DELAY (default 5000)\n        Delay between two consecutive span exports, in milliseconds.\n" +
			"        Accepts an integer of milliseconds 1-2147483647 such as 5000.\n",
		"  OTEL_BSP_EXPORT_TIMEOUT (default 30000)\n        Longest time one span export may take, in milliseconds.\n" +
			"        Accepts an integer of milliseconds 1-2147483647 such as 30000.\n",
		"  OTEL_BSP_MAX_QUEUE_SIZE (default 2048)\n        Spans held for export; when full, new spans are dropped and counted.\n" +
			"        Accepts an integer 1-1048576.\n",
		"  OTEL_BSP_MAX_EXPORT_BATCH_SIZE (default 512)\n        Most spans sent in one OTLP export request.\n" +
			"        Accepts an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE.\n",
	} {
		if !strings.Contains(otel, want) {
			t.Errorf("OpenTelemetry section lacks %q", want)
		}
	}
	if strings.Contains(text[:i], "OTEL_") {
		t.Errorf("OTEL_ variables listed outside their section")
	}
}

func TestUsageCommands(t *testing.T) {
	var b bytes.Buffer
	Usage(&b, "/usr/local/bin/sidecar")
	text := b.String()
	for _, want := range []string{
		"Usage:\n  /usr/local/bin/sidecar\n",
		"\n  /usr/local/bin/sidecar -version\n",
		"\n  /usr/local/bin/sidecar trace [-jaeger URL] <trace-id>\n",
		"default " + DefaultJaegerURL,
		"OTEL_SERVICE_NAME (default unknown_service:sidecar)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	if DefaultJaegerURL != "http://127.0.0.1:16686" {
		t.Errorf("DefaultJaegerURL = %s", DefaultJaegerURL)
	}
}

// TestUsageEgressBreakerStitch expects the egress, breaker and stitching
// variables after the inbound ones, in this order, each with its default
// and meaning.
func TestUsageEgressBreakerStitch(t *testing.T) {
	text := usageText(t)
	at := strings.Index(text, "\n  TRACECAR_STREAM_IDLE_TIMEOUT ")
	if at < 0 {
		t.Fatal("usage lacks TRACECAR_STREAM_IDLE_TIMEOUT")
	}
	for _, want := range []string{
		"\n  TRACECAR_EGRESS_ENABLED (default true)\n",
		"\n  TRACECAR_EGRESS_ADDR (default 127.0.0.1:15001)\n        Address the egress proxy listens on; keep it on loopback",
		"\n  TRACECAR_EGRESS_ALLOW (default empty, any destination)\n        Destinations the egress proxy may reach, comma-separated; empty allows any destination.\n" +
			"        Accepts a comma-separated list of host, host:port, *.domain, IP, IP:port, [IPv6]:port or CIDR such as api.example.com:443,*.internal,10.0.0.0/8.\n",
		"\n  TRACECAR_EGRESS_MAX_CONCURRENT (default 1024)\n",
		"\n  TRACECAR_EGRESS_TIMEOUT (default 30s)\n        Time limit of one egress request; streams (event streams, WebSockets, CONNECT tunnels) are exempt; 0 = none.\n",
		"\n  TRACECAR_EGRESS_SERIAL_INFERENCE (default false)\n        When exactly one inbound request is in flight, attach outbound calls that carry neither trace context nor a known correlation ID to it.\n",
		"\n  TRACECAR_BREAKER_ENABLED (default true)\n",
		"\n  TRACECAR_BREAKER_CONSECUTIVE_FAILURES (default 5)\n        Open the breaker after this many consecutive failures; 0 turns this rule off.\n        Accepts an integer 0-1000000.\n",
		"\n  TRACECAR_BREAKER_FAILURE_RATIO (default 0.5)\n        Open the breaker when this share of the requests in the window failed; 0 turns this rule off.\n" +
			"        Accepts a number from 0 (rule off) to 1 such as 0.5.\n",
		"\n  TRACECAR_BREAKER_MIN_REQUESTS (default 20)\n",
		"\n  TRACECAR_BREAKER_WINDOW (default 10s)\n",
		"\n  TRACECAR_BREAKER_OPEN_TIMEOUT (default 5s)\n",
		"\n  TRACECAR_BREAKER_MAX_OPEN_TIMEOUT (default 60s)\n        Longest open period the doubling reaches.\n        Accepts a Go duration >= TRACECAR_BREAKER_OPEN_TIMEOUT such as 60s.\n",
		"\n  TRACECAR_BREAKER_HALF_OPEN_PROBES (default 1)\n",
		"\n  TRACECAR_BREAKER_SUCCESSES_TO_CLOSE (default 2)\n",
		"\n  TRACECAR_BREAKER_FAILURE_STATUSES (default 500,502,503,504)\n" +
			"        Egress destinations' response statuses counted as failures, besides connect errors and timeouts (the app's own breaker counts no statuses); 429 is deliberately not in the default.\n",
		"\n  TRACECAR_BREAKER_MAX_UPSTREAMS (default 1024)\n",
		"\n  TRACECAR_STITCH_MAX_ENTRIES (default 4096)\n",
		"\n  TRACECAR_STITCH_TTL (default 30s)\n",
	} {
		i := strings.Index(text, want)
		if i < 0 {
			t.Errorf("usage lacks %q", want)
			continue
		}
		if i < at {
			t.Errorf("usage lists %q out of order", want)
		}
		at = i
	}
}

// TestUsageIdempotency expects the idempotency variables after the
// stitching ones, in this order, each with its default and meaning.
func TestUsageIdempotency(t *testing.T) {
	text := usageText(t)
	at := strings.Index(text, "\n  TRACECAR_STITCH_TTL ")
	if at < 0 {
		t.Fatal("usage lacks TRACECAR_STITCH_TTL")
	}
	for _, want := range []string{
		"\n  TRACECAR_IDEMPOTENCY_ENABLED (default true)\n        Enforce Idempotency-Key on inbound requests: one execution per key, its response replayed to retries.\n",
		"\n  TRACECAR_IDEMPOTENCY_ROUTES (default empty, POST and PATCH optional, others off)\n" +
			"        Idempotency-Key mode per route, first match wins; a request no rule matches gets the default.\n" +
			"        Accepts a comma-separated list of [METHOD ]PATH=MODE rules, PATH exact or ending in /*, MODE off, optional or required, such as POST /payments/*=required,/admin/*=off.\n",
		"\n  TRACECAR_IDEMPOTENCY_STORE (default memory)\n        Where keys are recorded: memory (one replica) or redis (replicas share keys; set TRACECAR_REDIS_URL).\n" +
			"        Accepts one of memory or redis.\n",
		"\n  TRACECAR_REDIS_URL (default empty)\n        Redis server of TRACECAR_IDEMPOTENCY_STORE=redis, required with it; errors about it mask its password.\n" +
			"        Accepts a redis://, rediss:// or unix:// URL such as redis://:password@redis:6379/0.\n",
		"\n  TRACECAR_IDEMPOTENCY_RETENTION (default 24h)\n",
		"\n  TRACECAR_IDEMPOTENCY_LEASE (default 0s)\n        How long an execution in progress holds its key; 0 = TRACECAR_UPSTREAM_RESPONSE_HEADER_TIMEOUT + 10s.\n" +
			"        Accepts 0 or a Go duration >= 1s such as 40s.\n",
		"\n  TRACECAR_IDEMPOTENCY_MAX_REQUEST_BYTES (default 1048576)\n",
		"\n  TRACECAR_IDEMPOTENCY_MAX_RESPONSE_BYTES (default 1048576)\n" +
			"        Largest response body stored for replay; a larger one is recorded as executed, not replayable; 0 = never replay bodies.\n" +
			"        Accepts an integer 0-1073741824.\n",
		"\n  TRACECAR_IDEMPOTENCY_CACHE_BYTES (default 67108864)\n",
		"\n  TRACECAR_IDEMPOTENCY_MAX_IN_FLIGHT (default 10000)\n",
		"\n  TRACECAR_IDEMPOTENCY_PRINCIPAL_HEADERS (default Authorization)\n" +
			"        Headers whose values, hashed and never stored, identify the client owning a key; none = all clients share keys.\n",
		"\n  TRACECAR_IDEMPOTENCY_FINGERPRINT_HEADERS (default Content-Type)\n",
		"\n  TRACECAR_IDEMPOTENCY_RELEASE_STATUSES (default 429)\n",
		"\n  TRACECAR_IDEMPOTENCY_WAIT (default 0s)\n" +
			"        How long a retry of a request still executing waits for its result before getting 409; 0 = 409 at once.\n",
	} {
		i := strings.Index(text, want)
		if i < 0 {
			t.Errorf("usage lacks %q", want)
			continue
		}
		if i < at {
			t.Errorf("usage lists %q out of order", want)
		}
		at = i
	}
}
