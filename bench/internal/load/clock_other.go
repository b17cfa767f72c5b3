//go:build !linux

package load

import "time"

// pacer sleeps with the Go runtime's timers (millisecond resolution on
// some systems) where no finer sleep is wired up.
type pacer struct{}

func newPacer() (*pacer, func()) { return &pacer{}, func() {} }

func (*pacer) sleep(d time.Duration) { time.Sleep(d) }
