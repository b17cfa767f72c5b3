package dedupe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Defaults applied when a setting or argument is zero.
const (
	// DefaultRetention is how long a completed record is kept (as Stripe
	// does). The draft: the resource "SHOULD define such expiration policy
	// and publish it in the documentation".
	DefaultRetention = 24 * time.Hour
	// DefaultLease is how long a claim stays in force without completion.
	DefaultLease = 60 * time.Second
)

// Store errors.
var (
	// ErrStoreUnavailable: the store could not be reached or answered with an
	// error. Callers fail closed or open per route.
	ErrStoreUnavailable = errors.New("dedupe: idempotency store unavailable")
	// ErrNotOwner: the claim is no longer held by the caller (released,
	// expired and taken over, or already completed). Nothing was written.
	ErrNotOwner = errors.New("dedupe: claim not owned")
	// ErrStoreFull: the store's in-flight bound is reached; nothing was claimed.
	ErrStoreFull = errors.New("dedupe: idempotency store full")
)

// Claim is proof that the holder is the one executor for Scope.
type Claim struct {
	Scope       Scope
	Fingerprint Fingerprint
	// Owner is a random token; only its holder may complete or release.
	Owner string
	// LeaseUntil is when the claim lapses if neither completed nor released.
	LeaseUntil time.Time
}

// Store keeps claims and completed records.
type Store interface {
	// Claim atomically makes the caller the one executor of scope, or returns
	// the record already there (in progress, completed or not replayable;
	// never an expired one — past ExpiresAt counts as absent). An in-progress
	// record whose LeaseUntil has passed is also absent: the caller takes
	// the scope over and the stale owner can no longer complete it.
	// A lease of 0 means DefaultLease. (The draft: a retry "while the
	// original request is still being processed" SHOULD get a 409; a retry
	// after completion SHOULD get "the result of the previously completed
	// operation, success or an error".)
	Claim(ctx context.Context, scope Scope, fp Fingerprint, lease time.Duration) (*Claim, *Record, error)
	// Complete stores the final record (StateCompleted or StateNotReplayable)
	// for retention, only if c still owns the scope (ErrNotOwner otherwise:
	// a stale owner never overwrites). The claim stays in force until the
	// record is visible to Claim. Scope, Fingerprint, Owner and the
	// timestamps of rec are taken from c and the store's clock. A retention
	// of 0 means DefaultRetention.
	Complete(ctx context.Context, c *Claim, rec *Record, retention time.Duration) error
	// Release drops the claim if c still owns it (the app provably never got
	// the request, or a release status); ErrNotOwner otherwise.
	Release(ctx context.Context, c *Claim) error
}

// Clock tells the time. Stores use it for every timestamp and expiry check.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func clockOrSystem(c Clock) Clock {
	if c == nil {
		return systemClock{}
	}
	return c
}

// newOwner returns a fresh unguessable owner token.
func newOwner() string { return rand.Text() }

// live reports whether rec is still in force at now.
func live(rec *Record, now time.Time) bool {
	if !now.Before(rec.ExpiresAt) {
		return false
	}
	return rec.State != StateInProgress || now.Before(rec.LeaseUntil)
}

// inProgress builds the record a fresh claim stands for.
func inProgress(c *Claim, now time.Time) *Record {
	return &Record{
		Scope: c.Scope, Fingerprint: c.Fingerprint, State: StateInProgress, Owner: c.Owner,
		CreatedAt: now, LeaseUntil: c.LeaseUntil, ExpiresAt: c.LeaseUntil,
	}
}

// publicView returns rec without the owner token, for callers that do not own it.
func publicView(rec *Record) *Record {
	if rec.Owner == "" {
		return rec
	}
	cp := *rec
	cp.Owner = ""
	return &cp
}

// finalRecord checks rec and builds the record Complete stores for c.
func finalRecord(c *Claim, rec *Record, now time.Time, retention time.Duration) (*Record, error) {
	switch {
	case c == nil || rec == nil:
		return nil, errors.New("dedupe: Complete needs a claim and a record")
	case rec.State != StateCompleted && rec.State != StateNotReplayable:
		return nil, fmt.Errorf("dedupe: Complete needs a final state, got %s", rec.State)
	case retention < 0:
		return nil, fmt.Errorf("dedupe: negative retention %s", retention)
	}
	if retention == 0 {
		retention = DefaultRetention
	}
	out := *rec
	out.Scope, out.Fingerprint, out.Owner = c.Scope, c.Fingerprint, c.Owner
	if out.CreatedAt.IsZero() {
		out.CreatedAt = now
	}
	out.LeaseUntil = time.Time{}
	out.ExpiresAt = now.Add(retention)
	if err := out.validate(); err != nil {
		return nil, err
	}
	return &out, nil
}

func leaseOrDefault(lease time.Duration) (time.Duration, error) {
	switch {
	case lease < 0:
		return 0, fmt.Errorf("dedupe: negative lease %s", lease)
	case lease == 0:
		return DefaultLease, nil
	}
	return lease, nil
}
