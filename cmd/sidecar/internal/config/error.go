package config

import (
	"fmt"
	"unicode/utf8"
)

// maxValueLen is the number of characters of a bad value an [Error] quotes;
// longer values are cut and end in "…", so the message stays one line.
const maxValueLen = 64

// Error reports one bad configuration variable. Load returns it for every
// invalid or missing value, so the caller can print it and exit with code 2.
//
// Its message is exactly one line:
//
//	TRACECAR_INBOUND_ADDR="1.2.3.4:99999": port out of range; want host:port with port 0-65535
//
// When the variable is unset or empty the value is left out:
//
//	TRACECAR_UPSTREAM: not set; want an absolute http:// or https:// URL such as http://127.0.0.1:8080
type Error struct {
	// Var is the name of the environment variable, e.g. TRACECAR_INBOUND_ADDR.
	Var string
	// Value is the value that was rejected, with any URL password masked.
	// It is empty when the variable is unset or empty.
	Value string
	// Reason says what is wrong with Value, e.g. "port out of range".
	Reason string
	// Accepted says what the variable accepts, e.g. "host:port with port 0-65535".
	Accepted string
}

// Error returns the one-line message described on [Error].
func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s; want %s", e.Var, e.Reason, e.Accepted)
	}
	return fmt.Sprintf("%s=%q: %s; want %s", e.Var, truncate(e.Value), e.Reason, e.Accepted)
}

// truncate cuts s to maxValueLen characters, marking the cut with "…".
func truncate(s string) string {
	if utf8.RuneCountInString(s) <= maxValueLen {
		return s
	}
	n := 0
	for i := range s {
		if n == maxValueLen {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
