package dedupe

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLength)
	tests := []struct {
		name    string
		values  []string
		want    string
		wantErr error
	}{
		// Research §8 item 2: format.
		{"bare token", []string{"KG5LxwFBepaKHyUD"}, "KG5LxwFBepaKHyUD", nil},
		{"bare uuid", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, "8e03978e-40d5-43e8-bc93-6894a57f9324", nil},
		{"sf-string", []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, "8e03978e-40d5-43e8-bc93-6894a57f9324", nil},
		{"quoted and bare are the same key", []string{`"abc"`}, "abc", nil},
		{"sf-string escaped quote", []string{`"a\"b"`}, `a"b`, nil},
		{"sf-string escaped backslash", []string{`"a\\b"`}, `a\b`, nil},
		{"sf-string with space", []string{`"a b"`}, "a b", nil},
		{"surrounding whitespace trimmed", []string{" \tabc \t"}, "abc", nil},
		{"bare base64 chars", []string{"a+b/c=d:e.f~g_h"}, "a+b/c=d:e.f~g_h", nil},
		{"255 bare", []string{long}, long, nil},
		{"255 quoted", []string{`"` + long + `"`}, long, nil},
		{"255 after unescaping", []string{`"` + strings.Repeat(`\\`, MaxKeyLength) + `"`}, strings.Repeat(`\`, MaxKeyLength), nil},

		{"no field", nil, "", ErrKeyMissing},
		{"empty", []string{""}, "", ErrKeyInvalid},
		{"only whitespace", []string{"  "}, "", ErrKeyInvalid},
		{"empty sf-string", []string{`""`}, "", ErrKeyInvalid},
		{"256 bare", []string{long + "k"}, "", ErrKeyInvalid},
		{"256 quoted", []string{`"` + long + `k"`}, "", ErrKeyInvalid},
		{"non-ASCII bare", []string{"clé"}, "", ErrKeyInvalid},
		{"non-ASCII quoted", []string{`"clé"`}, "", ErrKeyInvalid},
		{"control char bare", []string{"a\x01b"}, "", ErrKeyInvalid},
		{"control char quoted", []string{"\"a\x7fb\""}, "", ErrKeyInvalid},
		{"tab inside quoted", []string{"\"a\tb\""}, "", ErrKeyInvalid},
		{"unterminated quote", []string{`"abc`}, "", ErrKeyInvalid},
		{"escape at end", []string{`"abc\`}, "", ErrKeyInvalid},
		{"bad escape", []string{`"a\nb"`}, "", ErrKeyInvalid},
		{"junk after string", []string{`"abc"def`}, "", ErrKeyInvalid},
		{"parameters", []string{`"abc";v=1`}, "", ErrKeyInvalid},
		{"bare with parameters", []string{`abc;v=1`}, "", ErrKeyInvalid},
		{"bare inner space", []string{"a b"}, "", ErrKeyInvalid},
		{"bare inner quote", []string{`a"b`}, "", ErrKeyInvalid},
		{"bare backslash", []string{`a\b`}, "", ErrKeyInvalid},

		// Research §8 item 3: repeated.
		{"two field lines", []string{"a", "b"}, "", ErrKeyRepeated},
		{"two identical field lines", []string{"a", "a"}, "", ErrKeyRepeated},
		{"bare list", []string{"a, b"}, "", ErrKeyRepeated},
		{"bare list no space", []string{"a,b"}, "", ErrKeyRepeated},
		{"sf-string list", []string{`"a", "b"`}, "", ErrKeyRepeated},
		{"sf-string trailing comma", []string{`"a",`}, "", ErrKeyRepeated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.values)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseKey(%q) = %q, %v; want error %v", tt.values, got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("ParseKey(%q) returned key %q with an error", tt.values, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseKey(%q) = %q, %v; want %q", tt.values, got, err, tt.want)
			}
		})
	}
}

func TestParseKeyErrorsSayWhatToFixWithoutTheKey(t *testing.T) {
	secret := "sk_live_0123456789"
	_, err := ParseKey([]string{secret + ",x"})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v must exist and not repeat the key", err)
	}
	if !strings.Contains(err.Error(), "single key") {
		t.Errorf("error %q does not say what to fix", err)
	}
	_, err = ParseKey([]string{strings.Repeat("k", 300)})
	if err == nil || !strings.Contains(err.Error(), "255") {
		t.Errorf("too long error %v does not name the limit", err)
	}
}

// quoteSF renders k as an RFC 8941 sf-string.
func quoteSF(k string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
}

func FuzzParseKey(f *testing.F) {
	for _, seed := range []string{
		"abc", `"abc"`, `"a\"b"`, `"a\\b"`, `"abc`, `"a\`, "a, b", `"a", "b"`, `"a";p=1`,
		"", " ", "clé", "a\x00b", strings.Repeat("k", 256), `"` + strings.Repeat("k", 255) + `"`,
	} {
		f.Add(seed, "")
		f.Add(seed, "second")
	}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		values := []string{v1}
		if v2 != "" {
			values = append(values, v2)
		}
		k, err := ParseKey(values)
		if err != nil {
			if !errors.Is(err, ErrKeyInvalid) && !errors.Is(err, ErrKeyRepeated) {
				t.Fatalf("ParseKey(%q): unexpected error class %v", values, err)
			}
			return
		}
		if len(values) != 1 {
			t.Fatalf("ParseKey(%q) accepted two field lines", values)
		}
		if len(k) < 1 || len(k) > MaxKeyLength {
			t.Fatalf("ParseKey(%q) = %q: length %d out of 1..255", values, k, len(k))
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				t.Fatalf("ParseKey(%q) = %q: byte 0x%02x not printable ASCII", values, k, k[i])
			}
		}
		// Every accepted key survives a round trip through its sf-string form.
		again, err := ParseKey([]string{quoteSF(k)})
		if err != nil || again != k {
			t.Fatalf("round trip of %q: %q, %v", k, again, err)
		}
	})
}
