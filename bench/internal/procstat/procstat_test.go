package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	line := "4242 (my (odd) proc) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 12345 1000000 500 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.ticks != 281 {
		t.Fatalf("ppid %d ticks %d, want 17 and 250+31", st.ppid, st.ticks)
	}
	if _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a short stat line must be refused")
	}
}

func TestParseStatus(t *testing.T) {
	text := "Name:\tsidecar\nVmPeak:\t 1000 kB\nVmHWM:\t   14336 kB\nVmRSS:\t   12288 kB\nThreads:\t5\n"
	rss, hwm, err := parseStatus([]byte(text))
	if err != nil || rss != 12288 || hwm != 14336 {
		t.Fatalf("rss %d hwm %d err %v, want 12288 14336", rss, hwm, err)
	}
	if _, _, err := parseStatus([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Fatal("a unit other than kB must be refused")
	}
}

// TestTreeCountsChild samples this test process with a child it started:
// the tree holds both, and their memory adds up.
func TestTreeCountsChild(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self, err := Tree(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var s Sample
	for {
		s, err = Tree(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if s.Procs >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Procs < 2 || s.RSSKiB <= self.RSSKiB || s.HWMKiB < s.RSSKiB {
		t.Fatalf("tree of the test: %+v; child alone: %+v", s, self)
	}
	if ClockTicks() <= 0 {
		t.Fatal("clock ticks must be positive")
	}
}
