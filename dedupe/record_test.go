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
