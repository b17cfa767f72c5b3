package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// OTel holds the standard OpenTelemetry variables tracecar acts on, checked
// and parsed. The SDK itself still reads the others (service name, resource
// attributes, endpoints, headers), which [Usage] lists too.
type OTel struct {
	// Protocol is the OTLP transport for traces, ProtocolGRPC or
	// ProtocolHTTPProtobuf: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
	// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.
	Protocol string
	// Sampler is the OTEL_TRACES_SAMPLER name, lower case, one of the
	// Sampler* constants; parentbased_always_on by default.
	Sampler string
	// SamplerArg is the sampling ratio in [0, 1] for SamplerTraceIDRatio and
	// SamplerParentBasedTraceIDRatio (OTEL_TRACES_SAMPLER_ARG, default 1).
	// It is 1 for the other samplers.
	SamplerArg float64
	// Propagators lists the OTEL_PROPAGATORS entries in order, without
	// duplicates, each PropagatorTraceContext or PropagatorBaggage. It is
	// empty, not nil, for "none".
	Propagators []string
	// SDKDisabled is OTEL_SDK_DISABLED: no spans are recorded or exported.
	SDKDisabled bool

	// BSPScheduleDelay is the delay between two consecutive exports of the
	// batch span processor (OTEL_BSP_SCHEDULE_DELAY, default 5s).
	BSPScheduleDelay time.Duration
	// BSPExportTimeout is the longest one export may take
	// (OTEL_BSP_EXPORT_TIMEOUT, default 30s).
	BSPExportTimeout time.Duration
	// BSPMaxQueueSize bounds the spans waiting for export; when the queue is
	// full, new spans are dropped and counted (OTEL_BSP_MAX_QUEUE_SIZE,
	// default 2048).
	BSPMaxQueueSize int
	// BSPMaxExportBatchSize is the most spans sent in one export, at most
	// BSPMaxQueueSize (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512).
	BSPMaxExportBatchSize int
}

// OTLP transports accepted by OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Samplers accepted by OTEL_TRACES_SAMPLER.
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Propagators accepted by OTEL_PROPAGATORS.
const (
	PropagatorTraceContext = "tracecontext"
	PropagatorBaggage      = "baggage"
	PropagatorNone         = "none"
)

// otelEnv declares the OTEL_* variables [Usage] lists, with the SDK's
// defaults. Where the default is not one literal value, the usage tag
// describes it instead of envDefault.
type otelEnv struct {
	ServiceName        string `env:"OTEL_SERVICE_NAME" usage:"unknown_service:{program}" help:"service.name of the spans the sidecar exports."`
	ResourceAttributes string `env:"OTEL_RESOURCE_ATTRIBUTES" usage:"none" help:"More resource attributes of every span, as key1=value1,key2=value2."`
	Endpoint           string `env:"OTEL_EXPORTER_OTLP_ENDPOINT" usage:"http://localhost:4318, or http://localhost:4317 for grpc" help:"Base URL of the OTLP receiver; http/protobuf sends to its /v1/traces." want:"an absolute http:// or https:// URL such as http://127.0.0.1:4318"`
	TracesEndpoint     string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" usage:"derived from OTEL_EXPORTER_OTLP_ENDPOINT" help:"URL traces are sent to, used as is; overrides OTEL_EXPORTER_OTLP_ENDPOINT." want:"an absolute http:// or https:// URL such as http://127.0.0.1:4318/v1/traces"`
	Protocol           string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf" oneof:"grpc http/protobuf" help:"OTLP transport."`
	TracesProtocol     string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" usage:"OTEL_EXPORTER_OTLP_PROTOCOL" oneof:"grpc http/protobuf" help:"OTLP transport for traces; overrides OTEL_EXPORTER_OTLP_PROTOCOL."`
	Headers            string `env:"OTEL_EXPORTER_OTLP_HEADERS" usage:"none" help:"Headers of every export request, as key1=value1,key2=value2 (e.g. credentials)."`
	Sampler            string `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on" oneof:"always_on always_off traceidratio parentbased_always_on parentbased_always_off parentbased_traceidratio" help:"Which traces are sampled."`
	SamplerArg         string `env:"OTEL_TRACES_SAMPLER_ARG" usage:"1.0" help:"Sampling ratio of the traceidratio samplers; ignored by the others." want:"a number from 0 to 1 such as 0.25"`
	Propagators        string `env:"OTEL_PROPAGATORS" envDefault:"tracecontext,baggage" help:"Context propagation formats, comma-separated." want:"a comma-separated list of tracecontext, baggage or none"`
	SDKDisabled        string `env:"OTEL_SDK_DISABLED" envDefault:"false" oneof:"true false" want:"true or false" help:"true records and exports no spans; requests are still proxied and correlated."`
	// The batch span processor. The specification defines the two delays
	// as integers of milliseconds; 0 is refused, as it would export
	// without pause or time out at once.
	BSPScheduleDelay      string `env:"OTEL_BSP_SCHEDULE_DELAY" envDefault:"5000" min:"1" max:"2147483647" help:"Delay between two consecutive span exports, in milliseconds." want:"an integer of milliseconds 1-2147483647 such as 5000"`
	BSPExportTimeout      string `env:"OTEL_BSP_EXPORT_TIMEOUT" envDefault:"30000" min:"1" max:"2147483647" help:"Longest time one span export may take, in milliseconds." want:"an integer of milliseconds 1-2147483647 such as 30000"`
	BSPMaxQueueSize       string `env:"OTEL_BSP_MAX_QUEUE_SIZE" envDefault:"2048" min:"1" max:"1048576" help:"Spans held for export; when full, new spans are dropped and counted." want:"an integer 1-1048576"`
	BSPMaxExportBatchSize string `env:"OTEL_BSP_MAX_EXPORT_BATCH_SIZE" envDefault:"512" min:"1" max:"1048576" help:"Most spans sent in one OTLP export request." want:"an integer from 1 to OTEL_BSP_MAX_QUEUE_SIZE"`
}

// loadOTel checks the OTEL_* variables in otelEnv order. Like the SDK, it
// ignores surrounding spaces and, in names, case.
func loadOTel(environ map[string]string) (*OTel, error) {
	var raw otelEnv
	if _, err := envErrors(env.ParseWithOptions(&raw, env.Options{Environment: environ})); err != nil {
		return nil, err // all fields are strings: this is a bug in the tags
	}
	fs := fieldsOf(reflect.TypeFor[otelEnv]())
	byKey := make(map[string]field, len(fs))
	for _, f := range fs {
		byKey[f.key] = f
	}
	o := &OTel{SamplerArg: 1}
	word := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	oneof := func(key, s string) (string, *Error) {
		f := byKey[key]
		if w := word(s); slices.Contains(f.oneof(), w) {
			return w, nil
		}
		return "", f.fail(s, "unknown value")
	}

	for _, ep := range []struct{ key, val string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", raw.Endpoint},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raw.TracesEndpoint},
	} {
		if v := strings.TrimSpace(ep.val); v != "" {
			if _, e := parseHTTPURL(byKey[ep.key], v); e != nil {
				return nil, e
			}
		}
	}

	protocol, e := oneof("OTEL_EXPORTER_OTLP_PROTOCOL", raw.Protocol)
	if e != nil {
		return nil, e
	}
	o.Protocol = protocol
	if strings.TrimSpace(raw.TracesProtocol) != "" {
		if o.Protocol, e = oneof("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raw.TracesProtocol); e != nil {
			return nil, e
		}
	}

	if o.Sampler, e = oneof("OTEL_TRACES_SAMPLER", raw.Sampler); e != nil {
		e.Reason = "unsupported sampler"
		return nil, e
	}
	if arg := strings.TrimSpace(raw.SamplerArg); arg != "" &&
		(o.Sampler == SamplerTraceIDRatio || o.Sampler == SamplerParentBasedTraceIDRatio) {
		f := byKey["OTEL_TRACES_SAMPLER_ARG"]
		r, err := strconv.ParseFloat(arg, 64)
		switch {
		case err != nil:
			return nil, f.fail(raw.SamplerArg, "not a number")
		case math.IsNaN(r) || r < 0 || r > 1:
			// The SDK would silently fall back to 1 (or keep NaN).
			return nil, f.fail(raw.SamplerArg, "out of range")
		}
		o.SamplerArg = r
	}

	if o.Propagators, e = parsePropagators(byKey["OTEL_PROPAGATORS"], raw.Propagators); e != nil {
		return nil, e
	}

	disabled, e := oneof("OTEL_SDK_DISABLED", raw.SDKDisabled)
	if e != nil {
		return nil, e
	}
	o.SDKDisabled = disabled == "true"

	delay, e := parseInt(byKey["OTEL_BSP_SCHEDULE_DELAY"], raw.BSPScheduleDelay)
	if e != nil {
		return nil, e
	}
	o.BSPScheduleDelay = time.Duration(delay) * time.Millisecond
	timeout, e := parseInt(byKey["OTEL_BSP_EXPORT_TIMEOUT"], raw.BSPExportTimeout)
	if e != nil {
		return nil, e
	}
	o.BSPExportTimeout = time.Duration(timeout) * time.Millisecond
	queue, e := parseInt(byKey["OTEL_BSP_MAX_QUEUE_SIZE"], raw.BSPMaxQueueSize)
	if e != nil {
		return nil, e
	}
	o.BSPMaxQueueSize = int(queue)
	f := byKey["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"]
	batch, e := parseInt(f, raw.BSPMaxExportBatchSize)
	if e != nil {
		return nil, e
	}
	// The specification: "Must be less than or equal to
	// OTEL_BSP_MAX_QUEUE_SIZE". The SDK would quietly shrink the batch.
	if batch > queue {
		return nil, f.fail(raw.BSPMaxExportBatchSize,
			fmt.Sprintf("larger than OTEL_BSP_MAX_QUEUE_SIZE (%d)", queue))
	}
	o.BSPMaxExportBatchSize = int(batch)
	return o, nil
}

// parseInt parses the decimal integer raw, spaces around it ignored, and
// checks it against the field's min and max tags.
func parseInt(f field, raw string) (int64, *Error) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, f.fail(raw, "out of range")
		}
		return 0, f.fail(raw, "not an integer")
	}
	lo, hasLo := f.intTag("min")
	hi, hasHi := f.intTag("max")
	if (hasLo && n < lo) || (hasHi && n > hi) {
		return 0, f.fail(raw, "out of range")
	}
	return n, nil
}

// parsePropagators splits a comma list of propagator names. Empty entries
// are skipped, duplicates dropped, and "none" must stand alone.
func parsePropagators(f field, raw string) ([]string, *Error) {
	list := []string{}
	none := false
	for item := range strings.SplitSeq(raw, ",") {
		p := strings.ToLower(strings.TrimSpace(item))
		switch p {
		case "":
			continue
		case PropagatorNone:
			none = true
		case PropagatorTraceContext, PropagatorBaggage:
			if !slices.Contains(list, p) {
				list = append(list, p)
			}
		default:
			return nil, f.fail(raw, "unknown propagator "+strconv.Quote(truncate(strings.TrimSpace(item))))
		}
	}
	switch {
	case none && len(list) > 0:
		return nil, f.fail(raw, "none cannot be combined with other propagators")
	case !none && len(list) == 0:
		return nil, f.fail(raw, "no propagator named")
	}
	return list, nil
}
