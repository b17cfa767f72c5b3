package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestScopeIDFieldBoundaries(t *testing.T) {
	base := Scope{Principal: "p1", Method: "POST", Route: "/orders", Key: "k1"}
	others := []Scope{
		{Principal: "p1P", Method: "OST", Route: "/orders", Key: "k1"},
		{Principal: "p1", Method: "POST/", Route: "orders", Key: "k1"},
		{Principal: "p1", Method: "POST", Route: "/ordersk", Key: "1"},
		{Principal: "p2", Method: "POST", Route: "/orders", Key: "k1"},
		{Principal: "p1", Method: "PATCH", Route: "/orders", Key: "k1"},
		{Principal: "p1", Method: "POST", Route: "/payments", Key: "k1"},
		{Principal: "p1", Method: "POST", Route: "/orders", Key: "k2"},
		{Principal: "", Method: "p1POST", Route: "/orders", Key: "k1"},
	}
	id := base.ID()
	if len(id) != 64 {
		t.Fatalf("ID %q is not hex SHA-256", id)
	}
	if base.ID() != id {
		t.Fatal("ID is not deterministic")
	}
	for _, o := range others {
		if o.ID() == id {
			t.Errorf("scope %+v has the same ID as %+v", o, base)
		}
	}
}

func TestScopeKeyHash(t *testing.T) {
	sum := sha256.Sum256([]byte("abc"))
	want := hex.EncodeToString(sum[:])[:12]
	s := Scope{Principal: "p", Key: "abc"}
	if got := s.KeyHash(); got != want || want != "ba7816bf8f01" {
		t.Fatalf("KeyHash = %q, want %q", got, want)
	}
	if got := (Scope{Principal: "other", Key: "abc"}).KeyHash(); got != want {
		t.Errorf("KeyHash depends on more than the key: %q", got)
	}
}

type hasherInput struct {
	fields [][2]string
	body   []string // Write calls
}

func (in hasherInput) sum() Fingerprint {
	h := NewHasher()
	for _, f := range in.fields {
		h.Field(f[0], f[1])
	}
	for _, b := range in.body {
		if n, err := h.Write([]byte(b)); n != len(b) || err != nil {
			panic("Hasher.Write failed")
		}
	}
	return h.Sum()
}

func TestHasherMovingBytesChangesFingerprint(t *testing.T) {
	base := hasherInput{
		fields: [][2]string{{"method", "POST"}, {"target", "/orders?a=1"}, {"Content-Type", "application/json"}},
		body:   []string{`{"amount":100}`},
	}
	tests := []struct {
		name string
		in   hasherInput
	}{
		{"value byte into the name", hasherInput{fields: [][2]string{{"methodP", "OST"}, {"target", "/orders?a=1"}, {"Content-Type", "application/json"}}, body: base.body}},
		{"byte from one field to the next", hasherInput{fields: [][2]string{{"method", "POS"}, {"Ttarget", "/orders?a=1"}, {"Content-Type", "application/json"}}, body: base.body}},
		{"query byte into the next field", hasherInput{fields: [][2]string{{"method", "POST"}, {"target", "/orders?a="}, {"1Content-Type", "application/json"}}, body: base.body}},
		{"header value byte into the body", hasherInput{fields: [][2]string{{"method", "POST"}, {"target", "/orders?a=1"}, {"Content-Type", "application/jso"}}, body: []string{`n{"amount":100}`}}},
		{"body byte into the header", hasherInput{fields: [][2]string{{"method", "POST"}, {"target", "/orders?a=1"}, {"Content-Type", "application/json{"}}, body: []string{`"amount":100}`}}},
		{"different body", hasherInput{fields: base.fields, body: []string{`{"amount":101}`}}},
		{"different query", hasherInput{fields: [][2]string{{"method", "POST"}, {"target", "/orders?a=2"}, {"Content-Type", "application/json"}}, body: base.body}},
		{"different method", hasherInput{fields: [][2]string{{"method", "PATCH"}, {"target", "/orders?a=1"}, {"Content-Type", "application/json"}}, body: base.body}},
		{"fields reordered", hasherInput{fields: [][2]string{{"target", "/orders?a=1"}, {"method", "POST"}, {"Content-Type", "application/json"}}, body: base.body}},
		{"header dropped", hasherInput{fields: base.fields[:2], body: base.body}},
		{"empty body", hasherInput{fields: base.fields}},
	}
	want := base.sum()
	for _, tt := range tests {
		if got := tt.in.sum(); got == want {
			t.Errorf("%s: fingerprint unchanged (%s)", tt.name, got)
		}
	}
}

func TestHasherBodySplitDoesNotMatter(t *testing.T) {
	fields := [][2]string{{"method", "POST"}}
	whole := hasherInput{fields: fields, body: []string{"hello, world"}}.sum()
	split := hasherInput{fields: fields, body: []string{"hel", "", "lo, wor", "ld"}}.sum()
	if whole != split {
		t.Fatal("fingerprint depends on how the body was split into writes")
	}
}

func TestHasherSumAndReset(t *testing.T) {
	h := NewHasher()
	h.Field("method", "POST")
	first := h.Sum()
	if h.Sum() != first {
		t.Fatal("Sum changed the state")
	}
	_, _ = h.Write([]byte("x"))
	if h.Sum() == first {
		t.Fatal("Write after Sum did not count")
	}
	h.Reset()
	h.Field("method", "POST")
	if h.Sum() != first {
		t.Fatal("Reset did not restore the empty state")
	}
	if first.String() == "" || len(first.String()) != 64 {
		t.Errorf("Fingerprint.String = %q", first.String())
	}
}
