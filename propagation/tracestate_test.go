package propagation

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// members returns "bar01=01,…" for the conformance suite's numbered members
// from..to inclusive.
func members(from, to int) string {
	parts := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		parts = append(parts, fmt.Sprintf("bar%02d=%02d", i, i))
	}
	return strings.Join(parts, ",")
}

const (
	allKeyChars   = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
	allValueChars = " !\"#$%&'()*+-./0123456789:;<>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
)

func TestParseTracestateValid(t *testing.T) {
	cases := []struct {
		name   string
		in     []string
		want   string
		length int
	}{
		{"3.3.2 single tracing system", []string{"rojo=00f067aa0ba902b7"}, "rojo=00f067aa0ba902b7", 1},
		{"3.3.2 multiple tracing systems in order", []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 2},
		{"3.3.1.1 no field at all", nil, "", 0},
		{"3.3.1.1 vendors MUST accept an empty tracestate", []string{""}, "", 0},
		{"3.3.1.1 multiple fields MUST be combined in order", []string{"foo=1,bar=2", "rojo=1,congo=2", "baz=3"}, "foo=1,bar=2,rojo=1,congo=2,baz=3", 5},
		{"3.3.1.1 empty field before a member", []string{"", "foo=1"}, "foo=1", 1},
		{"3.3.1.1 empty field after a member", []string{"foo=1", ""}, "foo=1", 1},
		{"3.3.1.1 whitespace-only list-member is skipped", []string{"foo=1, ,bar=2"}, "foo=1,bar=2", 2},
		{"3.3.1.1 empty list-members are skipped", []string{",foo=1,,bar=2,"}, "foo=1,bar=2", 2},
		{"3.3.1.1 whitespace-only field", []string{" \t ", "foo=1"}, "foo=1", 1},
		{"3.3.1.1 spaces and tabs around list-members are ignored", []string{"foo=1 \t , \t bar=2, \t baz=3"}, "foo=1,bar=2,baz=3", 3},
		{"3.3.1.1 tabs and spaces around the comma", []string{"foo=1\t \t,\t \tbar=2,\t \tbaz=3"}, "foo=1,bar=2,baz=3", 3},
		{"3.3.1.1 leading space", []string{" foo=1"}, "foo=1", 1},
		{"3.3.1.1 leading tab", []string{"\tfoo=1"}, "foo=1", 1},
		{"3.3.1.1 trailing space", []string{"foo=1 "}, "foo=1", 1},
		{"3.3.1.1 trailing tab", []string{"foo=1\t"}, "foo=1", 1},
		{"3.3.1.3.2 leading spaces are part of the value", []string{"foo=  1"}, "foo=  1", 1},
		{"3.3.1.1 32 list-members across fields", []string{members(1, 10), members(11, 20), members(21, 30), members(31, 32)}, members(1, 32), 32},
		{"3.3.1.1 empty members do not count towards 32", []string{members(1, 32) + ",,, ,", ""}, members(1, 32), 32},
		{"3.3.1.3.1 every simple-key character", []string{allKeyChars + "=1"}, allKeyChars + "=1", 1},
		{"3.3.1.3.1 every multi-tenant-key character", []string{allKeyChars + "@a-z0-9_-*/=1"}, allKeyChars + "@a-z0-9_-*/=1", 1},
		{"3.3.1.3.1 tenant-id may start with a digit", []string{"1tenant@sys=1"}, "1tenant@sys=1", 1},
		{"3.3.1.3.1 simple-key of 256 characters", []string{"foo=1", strings.Repeat("z", 256) + "=1"}, "foo=1," + strings.Repeat("z", 256) + "=1", 2},
		{"3.3.1.3.1 tenant-id of 241 and system-id of 14 characters", []string{"foo=1", strings.Repeat("t", 241) + "@" + strings.Repeat("v", 14) + "=1"}, "foo=1," + strings.Repeat("t", 241) + "@" + strings.Repeat("v", 14) + "=1", 2},
		{"3.3.1.3.2 every value character", []string{"foo=" + allValueChars}, "foo=" + allValueChars, 1},
		{"3.3.1.3.2 value of 256 characters", []string{"foo=" + strings.Repeat("v", 256)}, "foo=" + strings.Repeat("v", 256), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := ParseTracestate(tc.in)
			if err != nil {
				t.Fatalf("ParseTracestate(%q) error: %v", tc.in, err)
			}
			if got := ts.String(); got != tc.want {
				t.Errorf("tracestate = %q, want %q", got, tc.want)
			}
			if ts.Len() != tc.length {
				t.Errorf("Len = %d, want %d", ts.Len(), tc.length)
			}
		})
	}
}

func TestParseTracestateInvalid(t *testing.T) {
	cases := []struct {
		name   string
		in     []string
		why    reason
		member int
	}{
		{"3.3.1.1 33 list-members are discarded", []string{members(1, 10), members(11, 20), members(21, 30), members(31, 33)}, rsnTooMany, 33},
		{"3.3.1.4 duplicate key with the same value", []string{"foo=1,foo=1"}, rsnDuplicate, 2},
		{"3.3.1.4 duplicate key with another value", []string{"foo=1,foo=2"}, rsnDuplicate, 2},
		{"3.3.1.4 duplicate key across fields", []string{"foo=1", "foo=2"}, rsnDuplicate, 2},
		{"3.3.1.2 list-member without '='", []string{"foo=1,bar"}, rsnNoEquals, 2},
		{"3.3.1.3.1 whitespace before '=' is in the key", []string{"foo =1"}, rsnKey, 1},
		{"3.3.1.3.1 upper case key", []string{"FOO=1"}, rsnKey, 1},
		{"3.3.1.3.1 '.' is not a key character", []string{"foo.bar=1"}, rsnKey, 1},
		{"3.3.1.3.1 empty key", []string{"=1"}, rsnKey, 1},
		{"3.3.1.3.1 simple-key starts with lcalpha", []string{"1foo=1"}, rsnKey, 1},
		{"3.3.1.3.1 simple-key of 257 characters", []string{"foo=1", strings.Repeat("z", 257) + "=1"}, rsnKey, 2},
		{"3.3.1.3.1 empty system-id", []string{"foo@=1,bar=2"}, rsnKey, 1},
		{"3.3.1.3.1 empty tenant-id", []string{"@foo=1,bar=2"}, rsnKey, 1},
		{"3.3.1.3.1 two '@' in a row", []string{"foo@@bar=1,bar=2"}, rsnKey, 1},
		{"3.3.1.3.1 two '@'", []string{"foo@bar@baz=1,bar=2"}, rsnKey, 1},
		{"3.3.1.3.1 system-id starts with lcalpha", []string{"t@1v=1"}, rsnKey, 1},
		{"3.3.1.3.1 tenant-id of 242 characters", []string{"foo=1", strings.Repeat("t", 242) + "@v=1"}, rsnKey, 2},
		{"3.3.1.3.1 system-id of 15 characters", []string{"foo=1", "t@" + strings.Repeat("v", 15) + "=1"}, rsnKey, 2},
		{"3.3.1.3.2 '=' is not a value character", []string{"foo=bar=baz"}, rsnValue, 1},
		{"3.3.1.3.2 value has at least one nblk-chr", []string{"foo=,bar=3"}, rsnValue, 1},
		{"3.3.1.3.2 value of 257 characters", []string{"foo=" + strings.Repeat("v", 257)}, rsnValue, 1},
		{"3.3.1.3.2 tab is not a value character", []string{"foo=a\tb"}, rsnValue, 1},
		{"3.3.1.3.2 DEL is not a value character", []string{"foo=a\x7fb"}, rsnValue, 1},
		{"3.3.1.3.2 non-ASCII is not a value character", []string{"foo=caf\u00e9"}, rsnValue, 1},
		{"3.3.1.3.2 newline is not a value character", []string{"foo=a\nb"}, rsnValue, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := ParseTracestate(tc.in)
			if !errors.Is(err, ErrInvalidTracestate) {
				t.Fatalf("ParseTracestate(%q) error = %v, want ErrInvalidTracestate", tc.in, err)
			}
			want := fmt.Sprintf("list-member %d: %s", tc.member, tc.why)
			if !strings.HasSuffix(err.Error(), want) {
				t.Errorf("error = %q, want it to end in %q", err, want)
			}
			if ts.Len() != 0 {
				t.Errorf("tracestate %q returned with an error", ts.String())
			}
		})
	}
}
