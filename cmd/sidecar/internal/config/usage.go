package config

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
)

// DefaultJaegerURL is the Jaeger query API that `sidecar trace` reads from
// unless -jaeger says otherwise.
const DefaultJaegerURL = "http://127.0.0.1:16686"

// Usage writes the help text of `sidecar -h` to w: the command forms, then
// every TRACECAR_* variable with its default, meaning and accepted values,
// then the standard OTEL_* variables honoured, with the SDK defaults. The
// variables are listed from the struct tags Load reads, so the text cannot
// drift from the parser. program is the binary's name as invoked
// (os.Args[0]).
func Usage(w io.Writer, program string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Usage:\n")
	fmt.Fprintf(&b, "  %s\n        Run the proxy, configured by the environment below.\n", program)
	fmt.Fprintf(&b, "  %s -version\n        Print the version and exit.\n", program)
	fmt.Fprintf(&b, "  %s -h\n        Print this help and exit.\n", program)
	fmt.Fprintf(&b, "  %s trace [-jaeger URL] <trace-id>\n", program)
	fmt.Fprintf(&b, "        Print a trace from Jaeger as an indented span tree\n")
	fmt.Fprintf(&b, "        (-jaeger is the Jaeger query URL, default %s).\n", DefaultJaegerURL)
	fmt.Fprintf(&b, "\nA bad value stops start-up with exit code 2 and one line naming the variable.\n")
	fmt.Fprintf(&b, "Durations are Go durations such as 500ms, 30s or 2m, except the OpenTelemetry\n")
	fmt.Fprintf(&b, "ones, which are integers of milliseconds as the OpenTelemetry specification says.\n")

	fmt.Fprintf(&b, "\nEnvironment:\n")
	for _, f := range fieldsOf(reflect.TypeFor[Config]()) {
		writeVar(&b, f, program)
	}

	fmt.Fprintf(&b, "\nOpenTelemetry environment (standard names, SDK defaults):\n")
	for _, f := range fieldsOf(reflect.TypeFor[otelEnv]()) {
		writeVar(&b, f, program)
	}
	_, _ = w.Write(b.Bytes())
}

// writeVar writes one variable: name and default, then its meaning and what
// it accepts, indented.
func writeVar(b *bytes.Buffer, f field, program string) {
	switch def := f.sf.Tag.Get("usage"); {
	case f.required:
		fmt.Fprintf(b, "  %s (required)\n", f.key)
	case def != "":
		fmt.Fprintf(b, "  %s (default %s)\n", f.key, strings.ReplaceAll(def, "{program}", filepath.Base(program)))
	default:
		fmt.Fprintf(b, "  %s (default %s)\n", f.key, f.def)
	}
	fmt.Fprintf(b, "        %s\n", f.help)
	if w := f.want(); w != "a string" {
		fmt.Fprintf(b, "        Accepts %s.\n", w)
	}
}
