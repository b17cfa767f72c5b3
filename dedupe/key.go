package dedupe

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyLength is the longest Idempotency-Key accepted, in bytes.
const MaxKeyLength = 255

// Key errors. ParseKey wraps them with a reason that says what to fix; the
// reason never repeats the key itself.
var (
	// ErrKeyMissing: no Idempotency-Key field line was sent.
	ErrKeyMissing = errors.New("dedupe: Idempotency-Key is missing")
	// ErrKeyInvalid: the value is not a usable key (empty, too long, bad characters, bad syntax).
	ErrKeyInvalid = errors.New("dedupe: Idempotency-Key is invalid")
	// ErrKeyRepeated: more than one field line, or a list of keys in one line.
	ErrKeyRepeated = errors.New("dedupe: Idempotency-Key must be sent once, with a single key")
)

// ParseKey returns the key carried by the Idempotency-Key field values (one
// string per field line, as http.Header.Values returns them).
//
// The draft defines the field as an Item Structured Header whose value "MUST
// be a String" (RFC 8941 sf-string). Strings are parsed strictly (only \" and
// \\ escapes); unquoted values are accepted leniently as bare tokens because
// widely used clients send them. The decoded key must be 1..255 printable
// ASCII characters (0x20-0x7E).
//
// An unparsable Structured Field would normally be ignored (RFC 8941 §4.2),
// but ignoring it here would run the request unprotected, so malformed keys
// are errors instead.
func ParseKey(fieldValues []string) (string, error) {
	switch len(fieldValues) {
	case 0:
		return "", ErrKeyMissing
	case 1:
	default:
		// Older revisions of the draft: "Clients MUST NOT include more than
		// one Idempotency-Key header field".
		return "", fmt.Errorf("%w: got %d Idempotency-Key field lines; send exactly one", ErrKeyRepeated, len(fieldValues))
	}
	v := strings.Trim(fieldValues[0], " \t")
	if v == "" {
		return "", fmt.Errorf("%w: the value is empty; send 1 to %d printable ASCII characters", ErrKeyInvalid, MaxKeyLength)
	}
	if v[0] == '"' {
		return parseSFString(v)
	}
	return parseBareKey(v)
}

// parseSFString parses an RFC 8941 §3.3.3 sf-string that makes up the whole
// field value. It allocates only when the string contains escapes.
func parseSFString(v string) (string, error) {
	var unescaped []byte // nil until the first escape
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			if unescaped == nil {
				unescaped = append(make([]byte, 0, len(v)), v[1:i]...)
			}
			i++
			if i == len(v) {
				return "", fmt.Errorf("%w: the quoted key ends inside an escape; close it with '\"'", ErrKeyInvalid)
			}
			if v[i] != '"' && v[i] != '\\' {
				return "", fmt.Errorf("%w: invalid escape at position %d; only \\\" and \\\\ are allowed in a quoted key", ErrKeyInvalid, i)
			}
			unescaped = append(unescaped, v[i])
		case c == '"':
			if err := checkAfterString(v[i+1:]); err != nil {
				return "", err
			}
			if unescaped == nil {
				return finishKey(v[1:i])
			}
			return finishKey(string(unescaped))
		case c < 0x20 || c > 0x7e:
			return "", fmt.Errorf("%w: byte 0x%02x at position %d is not printable ASCII", ErrKeyInvalid, c, i)
		case unescaped != nil:
			unescaped = append(unescaped, c)
		}
	}
	return "", fmt.Errorf("%w: the quoted key has no closing '\"'", ErrKeyInvalid)
}

// checkAfterString inspects what follows the closing quote of the key.
func checkAfterString(rest string) error {
	rest = strings.TrimLeft(rest, " \t")
	switch {
	case rest == "":
		return nil
	case rest[0] == ',':
		return fmt.Errorf("%w: the value is a list; send a single key", ErrKeyRepeated)
	case rest[0] == ';':
		return fmt.Errorf("%w: parameters after the key are not supported; send the quoted key alone", ErrKeyInvalid)
	default:
		return fmt.Errorf("%w: unexpected characters after the closing '\"'", ErrKeyInvalid)
	}
}

// parseBareKey accepts an unquoted key: visible ASCII except the characters
// that would make it ambiguous with Structured Field syntax.
func parseBareKey(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ',':
			return "", fmt.Errorf("%w: the value contains ',' (a list of keys); send a single key", ErrKeyRepeated)
		case c == ' ' || c == '\t':
			return "", fmt.Errorf("%w: whitespace at position %d in an unquoted key; quote the key as a Structured Field string", ErrKeyInvalid, i)
		case c == '"' || c == '\\' || c == ';':
			return "", fmt.Errorf("%w: %q at position %d in an unquoted key; quote the key as a Structured Field string", ErrKeyInvalid, c, i)
		case c < 0x20 || c > 0x7e:
			return "", fmt.Errorf("%w: byte 0x%02x at position %d is not printable ASCII", ErrKeyInvalid, c, i)
		}
	}
	return finishKey(v)
}

func finishKey(k string) (string, error) {
	switch {
	case k == "":
		return "", fmt.Errorf("%w: the quoted key is empty; send 1 to %d printable ASCII characters", ErrKeyInvalid, MaxKeyLength)
	case len(k) > MaxKeyLength:
		return "", tooLong()
	}
	return k, nil
}

func tooLong() error {
	return fmt.Errorf("%w: the key is longer than %d characters", ErrKeyInvalid, MaxKeyLength)
}
