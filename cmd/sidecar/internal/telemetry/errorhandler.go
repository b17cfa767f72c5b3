package telemetry

import (
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
)

// errorHandler logs the errors the OTel SDK reports through otel.Handle, at
// most one line per warnInterval, with the number of errors left out since
// the previous line.
type errorHandler struct {
	logger     *slog.Logger
	limit      limiter
	suppressed atomic.Uint64
}

var _ otel.ErrorHandler = (*errorHandler)(nil)

func newErrorHandler(logger *slog.Logger, now func() time.Time) *errorHandler {
	return &errorHandler{logger: logger, limit: limiter{now: now, every: warnInterval}}
}

// Handle implements otel.ErrorHandler.
func (h *errorHandler) Handle(err error) {
	if !h.limit.allow() {
		h.suppressed.Add(1)
		return
	}
	h.logger.Warn("OpenTelemetry SDK error",
		slog.String("error", err.Error()),
		slog.Uint64("suppressed_since_last_warning", h.suppressed.Swap(0)))
}
