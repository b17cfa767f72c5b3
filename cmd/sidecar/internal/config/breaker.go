package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// checkRatio accepts a number in (0, 1], or 0 for "rule off".
func checkRatio(c *Config, f field, raw string) *Error {
	r, err := strconv.ParseFloat(raw, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return f.fail(raw, "out of range")
	case err != nil:
		return f.fail(raw, "not a number")
	case math.IsNaN(r) || r < 0 || r > 1:
		return f.fail(raw, "out of range")
	}
	if r == 0 {
		r = 0 // not -0
	}
	c.BreakerFailureRatio = r
	return nil
}

// checkTripRules refuses an enabled breaker that nothing can open: both the
// consecutive failures rule and the failure ratio rule off. The error names
// TRACECAR_BREAKER_CONSECUTIVE_FAILURES, declared just before the ratio.
func checkTripRules(c *Config, _ field, _ string) *Error {
	if !c.BreakerEnabled || c.BreakerConsecutiveFailures != 0 || c.BreakerFailureRatio != 0 {
		return nil
	}
	return &Error{
		Var:      "TRACECAR_BREAKER_CONSECUTIVE_FAILURES",
		Value:    "0",
		Reason:   "both trip rules are off; set TRACECAR_BREAKER_ENABLED=false to disable the breaker",
		Accepted: "an integer 1-1000000 while TRACECAR_BREAKER_FAILURE_RATIO is 0",
	}
}

// checkMaxOpenTimeout keeps the cap of the open period at least the first
// open period.
func checkMaxOpenTimeout(c *Config, f field, raw string) *Error {
	if c.BreakerMaxOpenTimeout < c.BreakerOpenTimeout {
		return f.fail(raw, fmt.Sprintf("shorter than TRACECAR_BREAKER_OPEN_TIMEOUT (%s)", c.BreakerOpenTimeout))
	}
	return nil
}

// checkFailureStatuses stores the statuses of raw sorted, without
// duplicates.
func checkFailureStatuses(c *Config, f field, raw string) *Error {
	statuses, e := statusList(f, raw)
	if e != nil {
		return e
	}
	c.BreakerFailureStatuses = statuses
	return nil
}

// statusList parses the status list raw of field f (see parseStatuses),
// or says what is wrong with it.
func statusList(f field, raw string) ([]int, *Error) {
	statuses, entry, reason := parseStatuses(raw)
	switch {
	case reason == "":
		return statuses, nil
	case entry != "":
		return nil, f.fail(raw, "entry "+strconv.Quote(truncate(entry))+": "+reason)
	}
	return nil, f.fail(raw, reason)
}

// Bounds of an HTTP status code (RFC 9110 §15: three digits, 1xx to 5xx).
const (
	minStatus = 100
	maxStatus = 599
)

// parseStatuses parses a comma list of status codes and ranges such as
// 502-504, spaces around entries ignored, or the word none (an empty, not
// nil, list). On failure it returns the bad entry, if one is to blame, and
// the reason.
func parseStatuses(raw string) (statuses []int, entry, reason string) {
	if strings.EqualFold(strings.TrimSpace(raw), "none") {
		return []int{}, "", ""
	}
	var seen [maxStatus + 1]bool
	named := false
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.EqualFold(item, "none") {
			return nil, item, "none cannot be combined with statuses"
		}
		loText, hiText, isRange := strings.Cut(item, "-")
		lo, reason := parseStatus(loText)
		if reason != "" {
			return nil, item, reason
		}
		hi := lo
		if isRange {
			if hi, reason = parseStatus(hiText); reason != "" {
				return nil, item, reason
			}
			if hi < lo {
				return nil, item, "range reversed"
			}
		}
		for s := lo; s <= hi; s++ {
			seen[s] = true
		}
		named = true
	}
	if !named {
		return nil, "", "no status named"
	}
	statuses = []int{}
	for s := minStatus; s <= maxStatus; s++ {
		if seen[s] {
			statuses = append(statuses, s)
		}
	}
	return statuses, "", ""
}

// parseStatus parses one decimal status code 100-599.
func parseStatus(s string) (int, string) {
	s = strings.TrimSpace(s)
	if !isDigits(s) {
		return 0, "not a status code or range"
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n < minStatus || n > maxStatus {
		return 0, "out of range"
	}
	return int(n), ""
}
