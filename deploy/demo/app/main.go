// Command demo-app is a small HTTP service that `make demo` and the e2e tests
// put behind the sidecar. It is instrumented with the OpenTelemetry SDK and
// otelhttp, continues the W3C trace context the sidecar forwards, and exports
// its spans over OTLP/HTTP, so its spans nest under the sidecar's in Jaeger.
//
// Endpoints:
//
//	GET  /hello        greeting
//	GET  /orders/{id}  an order; records an internal child span "load order"
//	POST /orders       creates an order from a small JSON body (201)
//	GET  /fail         always 500
//	GET  /events       Server-Sent Events: a few events with short pauses
//	GET  /chain?to=URL&forward=correlation|traceparent|none
//	                   calls URL (through HTTP_PROXY, the sidecar's egress
//	                   proxy) and answers with its status and body
//	GET  /hang         answers only when the client gives up (a dependency
//	                   that hangs)
//
// Every JSON body echoes the X-Correlation-ID the app received and the IDs of
// its own server span. Configuration: -addr (or DEMO_ADDR), HTTP_PROXY for
// the outbound calls of /chain, and the standard OTEL_* variables
// (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, ...).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracecar/tracecar/deploy/demo/internal/demotel"
)

// correlationHeader is the header the sidecar uses to carry the correlation ID.
const correlationHeader = "X-Correlation-ID"

// maxOrderBody bounds the POST /orders request body.
const maxOrderBody = 64 << 10

func main() {
	defaultAddr := os.Getenv("DEMO_ADDR")
	if defaultAddr == "" {
		defaultAddr = "127.0.0.1:8080"
	}
	addr := flag.String("addr", defaultAddr, "listen address (env DEMO_ADDR)")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*addr, log); err != nil {
		log.Error("demo-app stopped", "error", err)
		os.Exit(1)
	}
}

func run(addr string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tp, err := demotel.NewTracerProvider(ctx, "demo-app")
	if err != nil {
		return err
	}
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)

	client, err := newOutboundClient(os.Getenv("HTTP_PROXY"))
	if err != nil {
		return err
	}
	stopping, stopHanging := context.WithCancel(context.Background())
	defer stopHanging()
	a := &app{
		tracer:   tp.Tracer("github.com/tracecar/tracecar/deploy/demo/app"),
		log:      log,
		client:   client,
		prop:     prop,
		stopping: stopping,
	}
	handler := otelhttp.NewHandler(a.routes(), "demo-app",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))

	srv := &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(stopHanging) // Shutdown waits for handlers: /hang must end
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("demo-app listening", "addr", addr)

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("demo-app shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = srv.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	// Flush the spans still queued in the batch processor.
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, tp.Shutdown(fctx))
}

type app struct {
	tracer   trace.Tracer
	log      *slog.Logger
	client   *http.Client                  // outbound calls of /chain
	prop     propagation.TextMapPropagator // for /chain?forward=traceparent
	stopping context.Context               // done when the server shuts down
}

func (a *app) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", a.hello)
	mux.HandleFunc("GET /orders/{id}", a.getOrder)
	mux.HandleFunc("POST /orders", a.createOrder)
	mux.HandleFunc("GET /fail", a.fail)
	mux.HandleFunc("GET /events", a.events)
	mux.HandleFunc("GET /chain", a.chain)
	mux.HandleFunc("GET /hang", a.hang)
	return mux
}

// reply is the JSON body of every non-streaming response.
type reply struct {
	Message       string `json:"message,omitempty"`
	OrderID       string `json:"order_id,omitempty"`
	CorrelationID string `json:"correlation_id"`
	Traceparent   string `json:"traceparent_received"`
	TraceID       string `json:"trace_id"`
	SpanID        string `json:"span_id"`
}

func (a *app) newReply(r *http.Request) reply {
	sc := trace.SpanContextFromContext(r.Context())
	return reply{
		CorrelationID: r.Header.Get(correlationHeader),
		Traceparent:   r.Header.Get("Traceparent"),
		TraceID:       sc.TraceID().String(),
		SpanID:        sc.SpanID().String(),
	}
}

func (a *app) writeJSON(w http.ResponseWriter, r *http.Request, status int, body reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		a.log.Warn("write response", "error", err)
	}
	a.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"trace_id", body.TraceID, "span_id", body.SpanID, "correlation_id", body.CorrelationID)
}

func (a *app) hello(w http.ResponseWriter, r *http.Request) {
	body := a.newReply(r)
	body.Message = "hello from demo-app"
	a.writeJSON(w, r, http.StatusOK, body)
}

func (a *app) getOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.loadOrder(r.Context(), id)
	body := a.newReply(r)
	body.OrderID = id
	body.Message = "order found"
	a.writeJSON(w, r, http.StatusOK, body)
}

// loadOrder stands in for a database read; its span shows depth in the trace.
func (a *app) loadOrder(ctx context.Context, id string) {
	_, span := a.tracer.Start(ctx, "load order", trace.WithAttributes(attribute.String("order.id", id)))
	defer span.End()
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
	}
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Item     string `json:"item"`
		Quantity int    `json:"quantity"`
	}
	body := a.newReply(r)
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOrderBody)).Decode(&in); err != nil {
		body.Message = "bad order: " + err.Error()
		a.writeJSON(w, r, http.StatusBadRequest, body)
		return
	}
	body.OrderID = strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)
	body.Message = fmt.Sprintf("ordered %d x %s", in.Quantity, in.Item)
	a.writeJSON(w, r, http.StatusCreated, body)
}

func (a *app) fail(w http.ResponseWriter, r *http.Request) {
	body := a.newReply(r)
	body.Message = "demo failure"
	a.writeJSON(w, r, http.StatusInternalServerError, body)
}

// events streams a few Server-Sent Events with short pauses between them.
func (a *app) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	cid := r.Header.Get(correlationHeader)
	const n = 3
	for i := 1; i <= n; i++ {
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d,\"correlation_id\":%q}\n\n", i, i, cid); err != nil {
			return
		}
		flusher.Flush()
		if i == n {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	a.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", http.StatusOK,
		"trace_id", trace.SpanContextFromContext(r.Context()).TraceID().String(), "correlation_id", cid)
}
