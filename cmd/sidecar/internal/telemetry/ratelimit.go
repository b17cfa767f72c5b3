package telemetry

import (
	"sync"
	"time"
)

// warnInterval is the minimum time between two warning lines of the same
// kind: a collector that stays down must not flood the log.
const warnInterval = 30 * time.Second

// limiter lets one event through per interval. The first event always
// passes. It is safe for concurrent use.
type limiter struct {
	now   func() time.Time
	every time.Duration

	mu      sync.Mutex
	started bool      // an event has passed
	last    time.Time // when the last event passed
}

// allow reports whether an event may be logged now, and if so starts a new
// interval.
func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.started && now.Sub(l.last) < l.every {
		return false
	}
	l.started, l.last = true, now
	return true
}
