package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Drop reasons, the values of the reason label of tracecar_spans_dropped_total.
const (
	reasonQueueFull    = "queue_full"
	reasonExportFailed = "export_failed"
)

// processorConfig is the processor's share of Settings, defaults applied.
type processorConfig struct {
	queueSize int
	batchSize int
	interval  time.Duration // longest a partial batch waits
	timeout   time.Duration // bound of one ExportSpans call
	logger    *slog.Logger
	now       func() time.Time
}

// processor is a bounded batch span processor. The request path only ever
// does a non-blocking channel send in OnEnd; one goroutine batches the queue
// and exports it. Spans that do not fit in the queue, or whose export fails,
// are dropped and counted by reason, and a warning is logged at most once
// per warnInterval.
//
// It replaces sdktrace.NewBatchSpanProcessor, whose queue-full drops are only
// observable through the SDK's experimental self-observability metrics.
type processor struct {
	exporter  sdktrace.SpanExporter
	queue     chan sdktrace.ReadOnlySpan
	batchSize int
	interval  time.Duration
	timeout   time.Duration

	exported     prometheus.Counter
	queueFull    prometheus.Counter
	exportFailed prometheus.Counter
	collectors   []prometheus.Collector
	queueFullN   atomic.Uint64 // queueFull again, readable by the worker

	logger *slog.Logger
	warn   limiter

	// Owned by the worker goroutine.
	batch             []sdktrace.ReadOnlySpan
	unreportedFailed  uint64 // export_failed drops not yet in a log line
	reportedQueueFull uint64 // queueFullN at the last log line
	lastErr           error  // most recent export error not yet in a log line
	drainErr          error  // result of the final drain, read after done

	flushes chan flushRequest
	stop    chan struct{}
	done    chan struct{}
	// ctx is the parent of every export; Shutdown cancels it when its own
	// context ends, which aborts an export in flight.
	ctx    context.Context
	cancel context.CancelFunc

	stopped      atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

type flushRequest struct {
	ctx    context.Context
	result chan error // buffered, so the worker never waits for the caller
}

var _ sdktrace.SpanProcessor = (*processor)(nil)

// newProcessor starts the export goroutine; Shutdown stops it.
func newProcessor(exporter sdktrace.SpanExporter, cfg processorConfig) *processor {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracecar_spans_dropped_total",
		Help: "Spans dropped before reaching the OTLP collector, by reason (queue_full, export_failed).",
	}, []string{"reason"})
	ctx, cancel := context.WithCancel(context.Background())
	p := &processor{
		exporter:  exporter,
		queue:     make(chan sdktrace.ReadOnlySpan, cfg.queueSize),
		batchSize: cfg.batchSize,
		interval:  cfg.interval,
		timeout:   cfg.timeout,
		exported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracecar_spans_exported_total",
			Help: "Spans accepted by the OTLP collector.",
		}),
		queueFull:    dropped.WithLabelValues(reasonQueueFull),
		exportFailed: dropped.WithLabelValues(reasonExportFailed),
		logger:       cfg.logger,
		warn:         limiter{now: cfg.now, every: warnInterval},
		batch:        make([]sdktrace.ReadOnlySpan, 0, cfg.batchSize),
		flushes:      make(chan flushRequest),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
	}
	capacity := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tracecar_span_queue_capacity",
		Help: "Capacity of the span export queue; spans beyond it are dropped (queue_full).",
	})
	capacity.Set(float64(cfg.queueSize))
	length := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tracecar_span_queue_length",
		Help: "Spans waiting in the export queue.",
	}, func() float64 { return float64(len(p.queue)) })
	p.collectors = []prometheus.Collector{p.exported, dropped, length, capacity}
	go p.run()
	return p
}

// register adds the processor's metrics to reg; a nil reg registers nothing.
func (p *processor) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range p.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// OnStart implements sdktrace.SpanProcessor; nothing happens at start.
func (*processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export. It never blocks: when the queue is
// full the span is dropped and counted. It does not allocate.
func (p *processor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.stopped.Load() || !s.SpanContext().IsSampled() {
		return
	}
	select {
	case p.queue <- s:
	default:
		p.queueFull.Inc()
		p.queueFullN.Add(1)
	}
}

// ForceFlush exports every span queued when it is called, bounded by ctx.
func (p *processor) ForceFlush(ctx context.Context) error {
	if p.stopped.Load() {
		return nil
	}
	req := flushRequest{ctx: ctx, result: make(chan error, 1)}
	select {
	case p.flushes <- req:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports the queued spans, then shuts the exporter down. When ctx
// ends first, the export in flight is aborted, the rest of the queue is
// counted as export_failed, and the error wraps ctx's error.
func (p *processor) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() {
		p.stopped.Store(true)
		stopAbort := context.AfterFunc(ctx, p.cancel)
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
		}
		stopAbort()
		exporterErr := p.exporter.Shutdown(ctx)
		p.cancel()
		if err := ctx.Err(); err != nil {
			p.shutdownErr = fmt.Errorf("telemetry: span flush cut short: %w", err)
			return
		}
		// ctx had not ended, so the select returned on done: drainErr is set.
		p.shutdownErr = errors.Join(p.drainErr, exporterErr)
	})
	return p.shutdownErr
}

// run is the export goroutine: it fills a batch from the queue and exports
// it when it is full, when the interval ticks, on ForceFlush and on Shutdown.
func (p *processor) run() {
	defer close(p.done)
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for {
		select {
		case s := <-p.queue:
			p.batch = append(p.batch, s)
			if len(p.batch) == p.batchSize {
				_ = p.export(p.ctx) // counted and logged inside
			}
		case <-ticker.C:
			if len(p.batch) > 0 {
				_ = p.export(p.ctx) // counted and logged inside
			}
			p.warnDrops()
		case req := <-p.flushes:
			req.result <- p.drain(req.ctx, false)
		case <-p.stop:
			p.drainErr = p.drain(p.ctx, true)
			return
		}
	}
}

// drain exports the current batch and every span queued when it starts, so
// that spans ended concurrently cannot keep it going forever. A flush
// (final false) stops when ctx ends and leaves the rest queued; the final
// drain of Shutdown goes through the queue and counts what it cannot send.
func (p *processor) drain(ctx context.Context, final bool) error {
	var errs error
	for n := len(p.queue); n > 0 && (final || ctx.Err() == nil); n-- {
		p.batch = append(p.batch, <-p.queue)
		if len(p.batch) == p.batchSize {
			errs = errors.Join(errs, p.export(ctx))
		}
	}
	if len(p.batch) > 0 && (final || ctx.Err() == nil) {
		errs = errors.Join(errs, p.export(ctx))
	}
	if !final {
		errs = errors.Join(errs, ctx.Err())
	}
	return errs
}

// export sends the batch, bounded by the export timeout and ctx, counts the
// outcome and empties the batch. An ended ctx fails the batch unsent.
func (p *processor) export(ctx context.Context) error {
	n := len(p.batch)
	err := ctx.Err()
	if err == nil {
		ectx, cancel := context.WithTimeout(ctx, p.timeout)
		err = p.exporter.ExportSpans(ectx, p.batch)
		cancel()
	}
	clear(p.batch) // release the spans to the collector of garbage
	p.batch = p.batch[:0]
	if err != nil {
		p.exportFailed.Add(float64(n))
		p.unreportedFailed += uint64(n)
		p.lastErr = err
	} else {
		p.exported.Add(float64(n))
	}
	p.warnDrops()
	return err
}

// warnDrops logs the spans dropped since the last warning, at most once per
// warnInterval; drops that fall inside the interval are carried over to the
// next line.
func (p *processor) warnDrops() {
	queueFull := p.queueFullN.Load() - p.reportedQueueFull
	if p.unreportedFailed == 0 && queueFull == 0 {
		return
	}
	if !p.warn.allow() {
		return
	}
	args := []any{
		slog.Uint64("dropped_export_failed", p.unreportedFailed),
		slog.Uint64("dropped_queue_full", queueFull),
		slog.Int("queue_capacity", cap(p.queue)),
	}
	if p.lastErr != nil {
		args = append(args, slog.String("error", p.lastErr.Error()))
	}
	p.logger.Warn("spans dropped since the last warning", args...)
	p.unreportedFailed = 0
	p.reportedQueueFull += queueFull
	p.lastErr = nil
}
