package dedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is prepended to Scope.ID to form Redis keys.
const DefaultRedisPrefix = "tracecar:idem:"

// maxClaimAttempts bounds the read-then-take-over loop of Redis.Claim.
const maxClaimAttempts = 5

// RedisSettings configures NewRedis. Zero values mean the defaults.
type RedisSettings struct {
	// Prefix of every key. Default DefaultRedisPrefix.
	Prefix string
	// Clock is used for every timestamp and expiry check. Default: system time.
	Clock Clock
}

// Redis is the store for replicas that share keys. Claims are SET NX PX with
// an owner token; Complete and Release are scripts that act only while the
// stored record is still in progress and owned by the caller (fencing: a
// stale owner never overwrites). Redis TTLs only collect garbage: expiry is
// decided from the record's own timestamps.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	clock   Clock
	metrics *Metrics
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on client; m may be nil. The caller owns client.
func NewRedis(client redis.UniversalClient, s RedisSettings, m *Metrics) *Redis {
	if s.Prefix == "" {
		s.Prefix = DefaultRedisPrefix
	}
	return &Redis{client: client, prefix: s.Prefix, clock: clockOrSystem(s.Clock), metrics: metricsOrNew(m)}
}

var (
	// KEYS[1] record; ARGV[1] value read; ARGV[2] new value; ARGV[3] PX ms.
	swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)
	// KEYS[1] record; ARGV[1] owner prefix; ARGV[2] final value; ARGV[3] PX ms.
	completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)
	// KEYS[1] record; ARGV[1] owner prefix.
	releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, scope Scope, fp Fingerprint, lease time.Duration) (*Claim, *Record, error) {
	lease, err := leaseOrDefault(lease)
	if err != nil {
		return nil, nil, err
	}
	key := r.prefix + scope.ID()
	for range maxClaimAttempts {
		now := r.clock.Now()
		c := &Claim{Scope: scope, Fingerprint: fp, Owner: newOwner(), LeaseUntil: now.Add(lease)}
		val, err := inProgress(c, now).MarshalBinary()
		if err != nil {
			return nil, nil, err
		}
		err = r.client.Do(ctx, "SET", key, val, "NX", "PX", millis(lease)).Err()
		switch {
		case err == nil:
			return c, nil, nil
		case !errors.Is(err, redis.Nil):
			return nil, nil, r.unavailable("claim", err)
		}

		cur, err := r.client.Get(ctx, key).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			continue // gone between SET and GET: try again
		case err != nil:
			return nil, nil, r.unavailable("claim", err)
		}
		var rec Record
		if err := rec.UnmarshalBinary(cur); err != nil {
			return nil, nil, r.unavailable("claim", fmt.Errorf("record for %s: %w", scope.KeyHash(), err))
		}
		if rec.Scope != scope {
			return nil, nil, r.unavailable("claim", fmt.Errorf("record for %s belongs to another scope", scope.KeyHash()))
		}
		if live(&rec, now) {
			return nil, publicView(&rec), nil
		}
		// Expired by its own timestamps: take it over, unless someone else
		// changed it since we read it (then read again, never execute blindly).
		n, err := swapScript.Run(ctx, r.client, []string{key}, cur, val, millis(lease)).Int()
		if err != nil {
			return nil, nil, r.unavailable("claim", err)
		}
		if n == 1 {
			return c, nil, nil
		}
	}
	return nil, nil, r.unavailable("claim", fmt.Errorf("scope %s changed %d times while claiming", scope.KeyHash(), maxClaimAttempts))
}

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, c *Claim, rec *Record, retention time.Duration) error {
	now := r.clock.Now()
	final, err := finalRecord(c, rec, now, retention)
	if err != nil {
		return err
	}
	val, err := final.MarshalBinary()
	if err != nil {
		return err
	}
	n, err := completeScript.Run(ctx, r.client, []string{r.prefix + c.Scope.ID()},
		ownerPrefix(StateInProgress, c.Owner), val, millis(final.ExpiresAt.Sub(now))).Int()
	if err != nil {
		return r.unavailable("complete", err)
	}
	if n != 1 {
		return fmt.Errorf("%w: scope %s", ErrNotOwner, c.Scope.KeyHash())
	}
	return nil
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, c *Claim) error {
	if c == nil {
		return fmt.Errorf("%w: no claim", ErrNotOwner)
	}
	n, err := releaseScript.Run(ctx, r.client, []string{r.prefix + c.Scope.ID()},
		ownerPrefix(StateInProgress, c.Owner)).Int()
	if err != nil {
		return r.unavailable("release", err)
	}
	if n != 1 {
		return fmt.Errorf("%w: scope %s", ErrNotOwner, c.Scope.KeyHash())
	}
	return nil
}

// unavailable counts err and wraps it in ErrStoreUnavailable (the cause
// stays reachable with errors.Is, e.g. context.DeadlineExceeded).
func (r *Redis) unavailable(op string, err error) error {
	r.metrics.Errors.Inc()
	return fmt.Errorf("%w: redis %s: %w", ErrStoreUnavailable, op, err)
}

// millis is d in whole milliseconds, at least 1 (PX 0 is an error).
func millis(d time.Duration) int64 {
	return max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
}
