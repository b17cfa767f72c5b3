package dedupe

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleRecords() map[string]*Record {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	scope := Scope{Principal: "9f86d081884c", Method: "POST", Route: "/orders", Key: `8e03978e "quoted" \ key`}
	fp := Fingerprint{1, 2, 3, 31: 0xff}
	return map[string]*Record{
		"in progress": {
			Scope: scope, Fingerprint: fp, State: StateInProgress, Owner: "OWNERTOKEN",
			CreatedAt: t0, LeaseUntil: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Minute),
		},
		"completed": {
			Scope: scope, Fingerprint: fp, State: StateCompleted, Owner: "OWNERTOKEN",
			CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour),
			Response: &Response{
				Status: 201,
				Header: map[string][]string{
					"Content-Type": {"application/json"},
					"Set-Cookie":   {"a=1", "b=2"},
					"Location":     {"/orders/42"},
					"X-Empty":      {""},
				},
				Body: []byte("{\"id\":42}\x00\xff binary"),
			},
		},
		"completed with trailers": {
			Scope: scope, Fingerprint: fp, State: StateCompleted, Owner: "OWNERTOKEN",
			CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour),
			Response: &Response{
				Status: 200,
				Header: map[string][]string{"Content-Type": {"application/grpc"}, "X-Echo-Initial": {"i"}},
				Body:   []byte{0, 0, 0, 0, 3, 0x0a, 0x01, 0xff},
				Trailer: map[string][]string{
					"Grpc-Status":     {"13"},
					"Grpc-Message":    {"boom%20here"},
					"X-Trailing-Bin":  {"AAH+/w"},
					"X-Trailing-Many": {"a", "", "c"},
				},
			},
		},
		"trailers only": {
			Scope: scope, State: StateCompleted,
			Response: &Response{Status: 200, Header: map[string][]string{"Grpc-Status": {"9"}, "Grpc-Message": {"no"}}},
		},
		"completed empty": {
			Scope: Scope{}, State: StateCompleted, Response: &Response{Status: 204},
		},
		"not replayable": {
			Scope: scope, Fingerprint: fp, State: StateNotReplayable,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
			Reason: "response of 3.2 MiB over the 1 MiB replay cap", Status: 200,
		},
		"before epoch": {
			Scope: scope, State: StateNotReplayable, CreatedAt: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
			ExpiresAt: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), Reason: "streaming response", Status: 200,
		},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for name, rec := range sampleRecords() {
		t.Run(name, func(t *testing.T) {
			data, err := rec.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if len(data) != rec.encodedLen() {
				t.Errorf("encodedLen = %d, MarshalBinary wrote %d bytes", rec.encodedLen(), len(data))
			}
			var got Record
			if err := got.UnmarshalBinary(data); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !reflect.DeepEqual(&got, rec) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, *rec)
			}
			if rec.Response != nil && !bytes.Equal(got.Response.Body, rec.Response.Body) {
				t.Fatal("body bytes differ")
			}
			// Every truncation is rejected with ErrRecordInvalid, never a panic.
			for i := range len(data) {
				var r Record
				if err := r.UnmarshalBinary(data[:i]); !errors.Is(err, ErrRecordInvalid) {
					t.Fatalf("truncated to %d bytes: err %v", i, err)
				}
			}
			if err := got.UnmarshalBinary(append(data, 0)); !errors.Is(err, ErrRecordInvalid) {
				t.Errorf("trailing byte accepted: %v", err)
			}
		})
	}
}

// TestRecordVersion checks that only a response with trailers needs
// version 2: everything else stays readable by version-1 decoders.
func TestRecordVersion(t *testing.T) {
	for name, rec := range sampleRecords() {
		data, err := rec.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want := byte(recordVersion)
		if rec.Response != nil && len(rec.Response.Trailer) > 0 {
			want = recordVersionTrl
		}
		if data[1] != want {
			t.Errorf("%s: written as version %d, want %d", name, data[1], want)
		}
	}
	// An empty, non-nil trailer map is no trailers.
	rec := &Record{State: StateCompleted, Response: &Response{Status: 200, Trailer: map[string][]string{}}}
	data, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if data[1] != recordVersion || len(data) != rec.encodedLen() {
		t.Fatalf("empty trailers: version %d, %d bytes (encodedLen %d)", data[1], len(data), rec.encodedLen())
	}
}

// TestRecordVersion1Golden decodes bytes in the version-1 layout, as
// tracecar releases without trailers wrote them.
func TestRecordVersion1Golden(t *testing.T) {
	data := []byte{'t', 1, byte(StateCompleted), 0} // no owner
	data = append(data, make([]byte, 32)...)        // fingerprint
	data = append(data, 0, 4, 'P', 'O', 'S', 'T', 2, '/', 'x', 1, 'k')
	data = append(data, 0, 0, 0) // timestamps
	data = append(data, 0, 0)    // status, reason
	data = append(data, 1, 0xc9, 0x01, 1, 1, 'A', 1, 1, 'b', 2, 'o', 'k')
	var rec Record
	if err := rec.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	want := &Response{Status: 201, Header: map[string][]string{"A": {"b"}}, Body: []byte("ok")}
	if !reflect.DeepEqual(rec.Response, want) || rec.Scope != (Scope{Method: "POST", Route: "/x", Key: "k"}) {
		t.Fatalf("decoded %+v, response %+v", rec, rec.Response)
	}
	again, err := rec.MarshalBinary()
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("re-encoded %v (%v), want the same bytes %v", again, err, data)
	}
	// The same bytes claiming version 2 lack the trailer section.
	data[1] = recordVersionTrl
	if err := rec.UnmarshalBinary(data); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("version 2 without trailers: %v", err)
	}
	// With it (none), version 2 decodes to the same record.
	if err := rec.UnmarshalBinary(append(data, 0)); err != nil || !reflect.DeepEqual(rec.Response, want) {
		t.Fatalf("version 2 with an empty trailer section: %+v, %v", rec.Response, err)
	}
}

func TestRecordTrailerNamesSortedAndUnique(t *testing.T) {
	rec := sampleRecords()["completed with trailers"]
	data, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The trailer section ends the record: its names are "Grpc-Message",
	// "Grpc-Status", ... Swapping the first two letters of the first name
	// makes it sort after the second.
	i := bytes.LastIndex(data, []byte("Grpc-Message"))
	if i < 0 {
		t.Fatal("trailer name not found")
	}
	bad := bytes.Clone(data)
	copy(bad[i:], "Zrpc-Message")
	var got Record
	if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("unsorted trailer names accepted: %v", err)
	}
}

func TestRecordOwnerPrefix(t *testing.T) {
	rec := sampleRecords()["in progress"]
	data, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, ownerPrefix(StateInProgress, rec.Owner)) {
		t.Fatal("encoding does not start with the owner prefix the Redis scripts compare")
	}
	for _, p := range [][]byte{ownerPrefix(StateCompleted, rec.Owner), ownerPrefix(StateInProgress, "OWNERTOKE"), ownerPrefix(StateInProgress, "OTHER")} {
		if bytes.HasPrefix(data, p) {
			t.Errorf("prefix %q matches a record it does not own", p)
		}
	}
}

func TestRecordInvalid(t *testing.T) {
	bad := []*Record{
		{State: StateCompleted},                         // completed without response
		{State: StateInProgress, Response: &Response{}}, // response on in-progress
		{State: 7},
		{State: StateNotReplayable, Status: 1000},
		{State: StateCompleted, Response: &Response{Status: -1}},
	}
	for _, r := range bad {
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrRecordInvalid) {
			t.Errorf("MarshalBinary(%+v) = %v, want ErrRecordInvalid", r, err)
		}
	}
	var r Record
	for _, data := range [][]byte{nil, []byte("x"), []byte("t\x02\x00"), {'t', 1, 9}} {
		if err := r.UnmarshalBinary(data); !errors.Is(err, ErrRecordInvalid) {
			t.Errorf("UnmarshalBinary(%q) = %v", data, err)
		}
	}
}

func FuzzRecordUnmarshal(f *testing.F) {
	for _, rec := range sampleRecords() {
		data, err := rec.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{'t', 1, 0})
	f.Add([]byte{'t', 2, 0})
	if trl, err := sampleRecords()["completed with trailers"].MarshalBinary(); err == nil {
		f.Add(trl[:len(trl)-1])
		f.Add(append(bytes.Clone(trl[:len(trl)-20]), 0xff, 0xff, 0xff, 0xff, 0x0f))
	}
	f.Add([]byte{'t', 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec Record
		if err := rec.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrRecordInvalid) {
				t.Fatalf("error not wrapping ErrRecordInvalid: %v", err)
			}
			return
		}
		again, err := rec.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if len(again) != rec.encodedLen() {
			t.Fatalf("encodedLen %d != %d", rec.encodedLen(), len(again))
		}
		if len(again) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(again))
		}
		var rec2 Record
		if err := rec2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("decode/encode not stable:\n%+v\n%+v", rec, rec2)
		}
	})
}
