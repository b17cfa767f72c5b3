package load

import (
	"runtime"
	"syscall"
	"time"
)

// prSetTimerSlack is prctl's PR_SET_TIMERSLACK (linux/prctl.h).
const prSetTimerSlack = 29

// pacer sleeps until due times with microsecond precision. The Go runtime's
// timers wake through epoll with millisecond resolution, which would add up
// to a millisecond of schedule lag to every open-loop request; a pacer owns
// an OS thread and sleeps with nanosleep on it instead, with a 1 µs timer
// slack (the kernel's default is 50 µs).
type pacer struct{}

// newPacer locks the calling goroutine to its thread until done is called.
func newPacer() (*pacer, func()) {
	runtime.LockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
	return &pacer{}, runtime.UnlockOSThread
}

// sleep waits for d.
func (*pacer) sleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
