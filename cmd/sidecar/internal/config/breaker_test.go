package config

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestLoadBreakerStatuses(t *testing.T) {
	fiveHundreds := make([]int, 0, 100)
	for s := 500; s <= 599; s++ {
		fiveHundreds = append(fiveHundreds, s)
	}
	tests := []struct {
		raw  string
		want []int
	}{
		{"", []int{500, 502, 503, 504}},
		{"429", []int{429}},
		{"503, 500 ,502", []int{500, 502, 503}},
		{"500-599", fiveHundreds},
		{"502 - 504,503,429", []int{429, 502, 503, 504}},
		{"100,599,599-599", []int{100, 599}},
		{"0500", []int{500}},
		{"500,,", []int{500}},
		{"none", []int{}},
		{" None ", []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_BREAKER_FAILURE_STATUSES": tt.raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.BreakerFailureStatuses, tt.want) {
				t.Errorf("BreakerFailureStatuses = %v, want %v", c.BreakerFailureStatuses, tt.want)
			}
		})
	}
}

func TestLoadBreakerEdgeValues(t *testing.T) {
	tests := []struct {
		env   map[string]string
		check func(c *Config) bool
	}{
		{map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "1"},
			func(c *Config) bool { return c.BreakerFailureRatio == 1 }},
		{map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "0.001"},
			func(c *Config) bool { return c.BreakerFailureRatio == 0.001 }},
		{map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "25e-2"},
			func(c *Config) bool { return c.BreakerFailureRatio == 0.25 }},
		// Either rule alone is enough.
		{map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "0"},
			func(c *Config) bool { return c.BreakerFailureRatio == 0 && c.BreakerConsecutiveFailures == 5 }},
		{map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "-0"},
			func(c *Config) bool { return c.BreakerFailureRatio == 0 && !math.Signbit(c.BreakerFailureRatio) }},
		{map[string]string{"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0"},
			func(c *Config) bool { return c.BreakerConsecutiveFailures == 0 && c.BreakerFailureRatio == 0.5 }},
		// With the breaker off, both rules may be off too.
		{map[string]string{"TRACECAR_BREAKER_ENABLED": "false", "TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0",
			"TRACECAR_BREAKER_FAILURE_RATIO": "0"},
			func(c *Config) bool { return !c.BreakerEnabled }},
		{map[string]string{"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "1000000"},
			func(c *Config) bool { return c.BreakerConsecutiveFailures == 1000000 }},
		{map[string]string{"TRACECAR_BREAKER_OPEN_TIMEOUT": "60s"},
			func(c *Config) bool {
				return c.BreakerOpenTimeout == time.Minute && c.BreakerMaxOpenTimeout == time.Minute
			}},
		{map[string]string{"TRACECAR_BREAKER_OPEN_TIMEOUT": "2m", "TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "1h"},
			func(c *Config) bool {
				return c.BreakerOpenTimeout == 2*time.Minute && c.BreakerMaxOpenTimeout == time.Hour
			}},
		{map[string]string{"TRACECAR_BREAKER_WINDOW": "1h", "TRACECAR_BREAKER_MIN_REQUESTS": "1000000",
			"TRACECAR_BREAKER_MAX_UPSTREAMS": "1000000", "TRACECAR_BREAKER_HALF_OPEN_PROBES": "1",
			"TRACECAR_BREAKER_SUCCESSES_TO_CLOSE": "1"},
			func(c *Config) bool {
				return c.BreakerWindow == time.Hour && c.BreakerMinRequests == 1000000 &&
					c.BreakerMaxUpstreams == 1000000 && c.BreakerHalfOpenProbes == 1 && c.BreakerSuccessesToClose == 1
			}},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			env := map[string]string{"TRACECAR_UPSTREAM": upstream}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(env)
			if err != nil {
				t.Fatalf("Load(%v): %v", tt.env, err)
			}
			if !tt.check(c) {
				t.Errorf("%v loaded as %+v", tt.env, c)
			}
		})
	}
}

const (
	wantRatio    = "want a number from 0 (rule off) to 1 such as 0.5"
	wantStatuses = "want a comma-separated list of status codes 100-599 and ranges such as 500,502-504, or none"
	wantMaxOpen  = "want a Go duration >= TRACECAR_BREAKER_OPEN_TIMEOUT such as 60s"
)

func TestLoadBreakerErrors(t *testing.T) {
	const statuses = "TRACECAR_BREAKER_FAILURE_STATUSES"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		// TRACECAR_BREAKER_FAILURE_RATIO
		{"ratio abc", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "abc"},
			`TRACECAR_BREAKER_FAILURE_RATIO="abc": not a number; ` + wantRatio},
		{"ratio 1.5", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "1.5"},
			`TRACECAR_BREAKER_FAILURE_RATIO="1.5": out of range; ` + wantRatio},
		{"ratio negative", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "-0.1"},
			`TRACECAR_BREAKER_FAILURE_RATIO="-0.1": out of range; ` + wantRatio},
		{"ratio NaN", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "NaN"},
			`TRACECAR_BREAKER_FAILURE_RATIO="NaN": out of range; ` + wantRatio},
		{"ratio infinite", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "1e400"},
			`TRACECAR_BREAKER_FAILURE_RATIO="1e400": out of range; ` + wantRatio},
		{"ratio percent", map[string]string{"TRACECAR_BREAKER_FAILURE_RATIO": "50%"},
			`TRACECAR_BREAKER_FAILURE_RATIO="50%": not a number; ` + wantRatio},

		// Trip rules
		{"both rules off", map[string]string{"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0", "TRACECAR_BREAKER_FAILURE_RATIO": "0"},
			`TRACECAR_BREAKER_CONSECUTIVE_FAILURES="0": both trip rules are off; set TRACECAR_BREAKER_ENABLED=false to disable the breaker; want an integer 1-1000000 while TRACECAR_BREAKER_FAILURE_RATIO is 0`},
		{"both rules off, breaker explicitly on", map[string]string{"TRACECAR_BREAKER_ENABLED": "true",
			"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "0", "TRACECAR_BREAKER_FAILURE_RATIO": "0.0"},
			`TRACECAR_BREAKER_CONSECUTIVE_FAILURES="0": both trip rules are off; set TRACECAR_BREAKER_ENABLED=false to disable the breaker; want an integer 1-1000000 while TRACECAR_BREAKER_FAILURE_RATIO is 0`},
		{"consecutive negative", map[string]string{"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "-1"},
			`TRACECAR_BREAKER_CONSECUTIVE_FAILURES="-1": out of range; want an integer 0-1000000`},
		{"consecutive too many", map[string]string{"TRACECAR_BREAKER_CONSECUTIVE_FAILURES": "1000001"},
			`TRACECAR_BREAKER_CONSECUTIVE_FAILURES="1000001": out of range; want an integer 0-1000000`},
		{"breaker enabled on", map[string]string{"TRACECAR_BREAKER_ENABLED": "on"},
			`TRACECAR_BREAKER_ENABLED="on": not true or false; want true or false`},

		// Open periods
		{"max open < open", map[string]string{"TRACECAR_BREAKER_OPEN_TIMEOUT": "10s", "TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "5s"},
			`TRACECAR_BREAKER_MAX_OPEN_TIMEOUT="5s": shorter than TRACECAR_BREAKER_OPEN_TIMEOUT (10s); ` + wantMaxOpen},
		{"open beyond default max", map[string]string{"TRACECAR_BREAKER_OPEN_TIMEOUT": "2m"},
			`TRACECAR_BREAKER_MAX_OPEN_TIMEOUT="60s": shorter than TRACECAR_BREAKER_OPEN_TIMEOUT (2m0s); ` + wantMaxOpen},
		{"max open garbage", map[string]string{"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "soon"},
			`TRACECAR_BREAKER_MAX_OPEN_TIMEOUT="soon": not a duration; ` + wantMaxOpen},
		{"max open 0", map[string]string{"TRACECAR_BREAKER_MAX_OPEN_TIMEOUT": "0s"},
			`TRACECAR_BREAKER_MAX_OPEN_TIMEOUT="0s": shorter than 1ms; ` + wantMaxOpen},
		{"open 0", map[string]string{"TRACECAR_BREAKER_OPEN_TIMEOUT": "0s"},
			`TRACECAR_BREAKER_OPEN_TIMEOUT="0s": shorter than 1ms; ` + wantPositive},
		{"window 99ms", map[string]string{"TRACECAR_BREAKER_WINDOW": "99ms"},
			`TRACECAR_BREAKER_WINDOW="99ms": shorter than 100ms; want a Go duration >= 100ms such as 500ms, 30s or 2m`},

		// Counts
		{"min requests 0", map[string]string{"TRACECAR_BREAKER_MIN_REQUESTS": "0"},
			`TRACECAR_BREAKER_MIN_REQUESTS="0": out of range; want an integer 1-1000000`},
		{"probes 0", map[string]string{"TRACECAR_BREAKER_HALF_OPEN_PROBES": "0"},
			`TRACECAR_BREAKER_HALF_OPEN_PROBES="0": out of range; want an integer 1-1000`},
		{"probes 1001", map[string]string{"TRACECAR_BREAKER_HALF_OPEN_PROBES": "1001"},
			`TRACECAR_BREAKER_HALF_OPEN_PROBES="1001": out of range; want an integer 1-1000`},
		{"successes 0", map[string]string{"TRACECAR_BREAKER_SUCCESSES_TO_CLOSE": "0"},
			`TRACECAR_BREAKER_SUCCESSES_TO_CLOSE="0": out of range; want an integer 1-1000`},
		{"successes not a number", map[string]string{"TRACECAR_BREAKER_SUCCESSES_TO_CLOSE": "two"},
			`TRACECAR_BREAKER_SUCCESSES_TO_CLOSE="two": not an integer; want an integer 1-1000`},
		{"max upstreams 0", map[string]string{"TRACECAR_BREAKER_MAX_UPSTREAMS": "0"},
			`TRACECAR_BREAKER_MAX_UPSTREAMS="0": out of range; want an integer 1-1000000`},

		// TRACECAR_BREAKER_FAILURE_STATUSES
		{"status 600", map[string]string{statuses: "500,600"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="500,600": entry "600": out of range; ` + wantStatuses},
		{"status 99", map[string]string{statuses: "99"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="99": entry "99": out of range; ` + wantStatuses},
		{"status huge", map[string]string{statuses: "99999999999999999999"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="99999999999999999999": entry "99999999999999999999": out of range; ` + wantStatuses},
		{"status class", map[string]string{statuses: "5xx"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="5xx": entry "5xx": not a status code or range; ` + wantStatuses},
		{"status signed", map[string]string{statuses: "+500"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="+500": entry "+500": not a status code or range; ` + wantStatuses},
		{"open range", map[string]string{statuses: "500-"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="500-": entry "500-": not a status code or range; ` + wantStatuses},
		{"range to 600", map[string]string{statuses: "500-600"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="500-600": entry "500-600": out of range; ` + wantStatuses},
		{"range reversed", map[string]string{statuses: "504-500"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="504-500": entry "504-500": range reversed; ` + wantStatuses},
		{"none with others", map[string]string{statuses: "none,500"},
			`TRACECAR_BREAKER_FAILURE_STATUSES="none,500": entry "none": none cannot be combined with statuses; ` + wantStatuses},
		{"no status", map[string]string{statuses: " , "},
			`TRACECAR_BREAKER_FAILURE_STATUSES=" , ": no status named; ` + wantStatuses},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadError(t, tt.env, tt.want) })
	}
}
