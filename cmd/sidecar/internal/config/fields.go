package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// field is one variable declared by a tagged struct field.
type field struct {
	index    int
	sf       reflect.StructField
	key      string // the variable, e.g. TRACECAR_INBOUND_ADDR
	def      string // envDefault, as written
	hasDef   bool
	required bool
	help     string
}

var durationType = reflect.TypeFor[time.Duration]()

// fieldsOf lists the variables declared by struct type t, in field order.
// Fields tagged env:"-" or without an env tag are skipped.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, opts, _ := strings.Cut(sf.Tag.Get("env"), ",")
		if key == "" || key == "-" {
			continue
		}
		def, hasDef := sf.Tag.Lookup("envDefault")
		fs = append(fs, field{
			index:    i,
			sf:       sf,
			key:      key,
			def:      def,
			hasDef:   hasDef,
			required: slices.Contains(strings.Split(opts, ","), "required"),
			help:     sf.Tag.Get("help"),
		})
	}
	return fs
}

// raw returns the text the field was parsed from: the variable's value, or
// the default when the variable is unset or empty (as env does).
func (f field) raw(environ map[string]string) string {
	if v := environ[f.key]; v != "" || !f.hasDef {
		return v
	}
	return f.def
}

// fail returns the *Error for value with reason.
func (f field) fail(value, reason string) *Error {
	return &Error{Var: f.key, Value: value, Reason: reason, Accepted: f.want()}
}

// oneof returns the words of the oneof tag, if any.
func (f field) oneof() []string {
	return strings.Fields(f.sf.Tag.Get("oneof"))
}

// want says in words what the field accepts: the want tag, or a phrase
// derived from its type and its oneof, min and max tags.
func (f field) want() string {
	if w := f.sf.Tag.Get("want"); w != "" {
		return w
	}
	if words := f.oneof(); len(words) > 0 {
		return "one of " + orList(words)
	}
	minTag, maxTag := f.sf.Tag.Get("min"), f.sf.Tag.Get("max")
	switch {
	case f.sf.Type == durationType:
		if minTag == "" {
			minTag = "0"
		}
		return "a Go duration >= " + minTag + " such as 500ms, 30s or 2m"
	case isInt(f.sf.Type.Kind()):
		switch {
		case minTag != "" && maxTag != "":
			return "an integer " + minTag + "-" + maxTag
		case minTag != "":
			return "an integer >= " + minTag
		}
		return "an integer"
	case f.sf.Type.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// check applies the oneof, min and max tags to the parsed value v, and
// normalises a oneof string to lower case.
func (f field) check(v reflect.Value, raw string) *Error {
	if words := f.oneof(); len(words) > 0 {
		word := strings.ToLower(raw)
		if !slices.Contains(words, word) {
			return f.fail(raw, "unknown value")
		}
		if v.Kind() == reflect.String {
			v.SetString(word)
		}
		return nil
	}
	switch {
	case f.sf.Type == durationType:
		d := time.Duration(v.Int())
		if d < 0 {
			return f.fail(raw, "negative duration")
		}
		if m := f.minDuration(); d < m {
			return f.fail(raw, "shorter than "+m.String())
		}
	case isInt(v.Kind()):
		n := v.Int()
		lo, hasLo := f.intTag("min")
		hi, hasHi := f.intTag("max")
		if (hasLo && n < lo) || (hasHi && n > hi) {
			return f.fail(raw, "out of range")
		}
	}
	return nil
}

// envError turns an error of env's about this field into an *Error. A field
// with its own check reports through it, since it knows the precise reason.
func (f field) envError(err error, raw string, own checkFunc, c *Config) error {
	var (
		vns env.VarIsNotSetError
		eve env.EmptyVarError
		pe  env.ParseError
		ne  *strconv.NumError
	)
	if errors.As(err, &pe) {
		err = pe.Err // ParseError has no Unwrap method
	}
	switch {
	case errors.As(err, &vns):
		return f.fail("", "not set")
	case errors.As(err, &eve):
		return f.fail("", "empty")
	}
	if own != nil {
		if e := own(c, f, raw); e != nil {
			return e
		}
	}
	switch {
	case len(f.oneof()) > 0:
		return f.fail(raw, "unknown value")
	case f.sf.Type == durationType:
		return f.fail(raw, "not a duration")
	case isInt(f.sf.Type.Kind()) && errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		return f.fail(raw, "out of range")
	case isInt(f.sf.Type.Kind()):
		return f.fail(raw, "not an integer")
	case f.sf.Type.Kind() == reflect.Bool:
		return f.fail(raw, "not true or false")
	}
	return f.fail(raw, "cannot parse: "+err.Error())
}

// intTag reads the integer tag name (min or max).
func (f field) intTag(name string) (int64, bool) {
	s, ok := f.sf.Tag.Lookup(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("config: field %s: bad %s tag %q", f.sf.Name, name, s))
	}
	return n, true
}

// minDuration reads the duration min tag; without one the minimum is 0.
func (f field) minDuration() time.Duration {
	s, ok := f.sf.Tag.Lookup("min")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("config: field %s: bad min tag %q", f.sf.Name, s))
	}
	return d
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
