package telemetry

import (
	"slices"

	"go.opentelemetry.io/otel/propagation"
)

// Propagator names accepted in OTEL_PROPAGATORS that the sidecar supports.
const (
	PropagatorTraceContext = "tracecontext"
	PropagatorBaggage      = "baggage"
	PropagatorNone         = "none"
)

// defaultPropagators is the OTel SDK default for OTEL_PROPAGATORS.
var defaultPropagators = []string{PropagatorTraceContext, PropagatorBaggage}

// Propagator builds the composite propagator named by OTEL_PROPAGATORS, in
// the order given (names already validated by the caller):
//   - "tracecontext": strict, the W3C Trace Context propagator; nil means
//     OTel's propagation.TraceContext;
//   - "baggage": W3C Baggage (propagation.Baggage);
//   - "none": no propagation at all, whatever else is listed.
//
// Nil or empty names mean "tracecontext,baggage", the OTel default. Repeated
// names count once; unknown names are ignored.
func Propagator(names []string, strict propagation.TextMapPropagator) propagation.TextMapPropagator {
	if len(names) == 0 {
		names = defaultPropagators
	}
	if slices.Contains(names, PropagatorNone) {
		return propagation.NewCompositeTextMapPropagator()
	}
	if strict == nil {
		strict = propagation.TraceContext{}
	}
	var (
		props []propagation.TextMapPropagator
		seen  []string
	)
	for _, name := range names {
		if slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		switch name {
		case PropagatorTraceContext:
			props = append(props, strict)
		case PropagatorBaggage:
			props = append(props, propagation.Baggage{})
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...)
}
