// Package procstat reads a process tree's CPU time and memory from Linux's
// /proc: utime+stime from /proc/<pid>/stat (fields 14 and 15, in clock
// ticks, all threads included) and VmRSS/VmHWM from /proc/<pid>/status,
// summed over the process and its descendants (nginx's master and worker,
// for instance).
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrFormat is wrapped when a /proc file does not parse.
var ErrFormat = errors.New("procstat: unexpected /proc format")

// Sample is a process tree at one moment.
type Sample struct {
	// Ticks is utime+stime of every process in the tree, in clock ticks.
	Ticks int64
	// RSSKiB and HWMKiB are the summed VmRSS and VmHWM (peak RSS), in KiB.
	RSSKiB, HWMKiB int64
	// Procs is the number of processes in the tree.
	Procs int
}

// ClockTicks returns the kernel's clock ticks per second (USER_HZ, the unit
// of utime and stime), asking getconf; 100, its value on every common
// architecture, when that fails.
func ClockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// stat is what /proc/<pid>/stat says that this package needs.
type stat struct {
	ppid  int
	ticks int64
}

// parseStat parses the text of /proc/<pid>/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("%w: no ')' in stat", ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 13 {
		return stat{}, fmt.Errorf("%w: %d fields in stat", ErrFormat, len(f)+2)
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return stat{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return stat{ppid: ppid, ticks: utime + stime}, nil
}

// parseStatus returns VmRSS and VmHWM in KiB from /proc/<pid>/status.
func parseStatus(b []byte) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%w: %s line %q", ErrFormat, name, value)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		if name == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	return rss, hwm, nil
}

// Tree samples pid and all its descendants.
func Tree(pid int) (Sample, error) {
	pids, err := tree(pid)
	if err != nil {
		return Sample{}, err
	}
	var s Sample
	for _, p := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(p))
		b, err := os.ReadFile(filepath.Join(dir, "stat")) //nolint:gosec // a /proc path built from a PID
		if err != nil {
			if p == pid {
				return Sample{}, err
			}
			continue // a descendant that just exited
		}
		st, err := parseStat(b)
		if err != nil {
			return Sample{}, err
		}
		b, err = os.ReadFile(filepath.Join(dir, "status")) //nolint:gosec // a /proc path built from a PID
		if err != nil {
			continue
		}
		rss, hwm, err := parseStatus(b)
		if err != nil {
			return Sample{}, err
		}
		s.Ticks += st.ticks
		s.RSSKiB += rss
		s.HWMKiB += hwm
		s.Procs++
	}
	return s, nil
}

// tree lists pid and its descendants, from the parent links of every
// process in /proc.
func tree(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")) //nolint:gosec // a /proc path built from a PID
		if err != nil {
			continue
		}
		if st, err := parseStat(b); err == nil {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}
