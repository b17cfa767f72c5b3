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
// with its default (or "required") and a line of meaning.
func TestUsageListsEveryVariable(t *testing.T) {
	text := usageText(t)
	params, err := env.GetFieldParamsWithOptions(&Config{}, env.Options{Environment: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(params) != len(fieldsOf(reflect.TypeFor[Config]())) {
		t.Fatalf("env sees %d variables, fieldsOf %d", len(params), len(fieldsOf(reflect.TypeFor[Config]())))
	}
	for _, p := range params {
		if !strings.HasPrefix(p.Key, "TRACECAR_") {
			t.Errorf("Config declares %s, outside the TRACECAR_ prefix", p.Key)
		}
		line := "\n  " + p.Key + " (default " + p.DefaultValue + ")\n        "
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
