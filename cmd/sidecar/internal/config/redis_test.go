package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadRedisURL lists URLs go-redis's ParseURL reads, with the redis
// store, and expects each kept as written.
func TestLoadRedisURL(t *testing.T) {
	for _, raw := range []string{
		"redis://localhost",
		"redis://redis:6379",
		"redis://redis:6379/",
		"redis://redis:6379/0",
		"redis://redis/15",
		"rediss://:p%40ss@redis.example.com:6380/2",
		"redis://user:pass@10.0.0.5:6379/1",
		"redis://user@redis",
		"redis://[::1]:6379/3",
		"redis://[fe80::1%25eth0]:6379",
		"REDIS://Redis.Internal.",
		"redis://my_redis:6379?db=4",
		"redis://redis/?db=4",
		"redis://redis/",
		"unix:///run/redis/redis.sock",
		"unix:///run/redis.sock?db=2",
		"unix://:secret@/run/redis.sock",
		"unix:/run/redis.sock",
	} {
		t.Run(raw, func(t *testing.T) {
			c, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream,
				"TRACECAR_IDEMPOTENCY_STORE": "redis", "TRACECAR_REDIS_URL": raw})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.RedisURL != raw || c.IdempotencyStore != IdempotencyStoreRedis {
				t.Errorf("loaded %q, store %q", c.RedisURL, c.IdempotencyStore)
			}
		})
	}
}

// TestRedisURLErrorsHidePassword sets URLs whose password is hunter2,
// broken in every part, and expects no error to show the password.
func TestRedisURLErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"redis://:hunter2@redis:0", "redis://u:hunter2@redis/x", "redis://:hunter2@", "http://u:hunter2@redis",
		"redis://:hunter2@redis?x=1", "redis://:hunter2@redis#f", "redis://:hunter2@[::1", "redis://:hunter2@red is",
		"redis://:hunter2/@redis", "redis://:hunter2?@redis", "redis://:hunter2#@redis", "redis://:hunter2%@redis",
		"redis://:hun ter2@redis", "redis://:hunter2\x7f@redis", "redis://u:hunter2:x@redis:y", "u:hunter2@redis:6379",
		":hunter2@redis", "unix://:hunter2@host/run/redis.sock", "unix://u:hunter2@", "redis:u:hunter2@redis",
		"redis://:hunter2@redis/0/1", "redis://:hunter2@redis:6379:6379", "redis://u:hunter2@@redis:0",
		"redis://:hunter2@redis/?db=x", "redis://:hunter2@redis?db=1;2",
	} {
		_, err := Load(map[string]string{"TRACECAR_UPSTREAM": upstream, "TRACECAR_IDEMPOTENCY_STORE": "redis",
			"TRACECAR_REDIS_URL": raw})
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != "TRACECAR_REDIS_URL" {
			t.Errorf("%q: error %v, want one about TRACECAR_REDIS_URL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter") || strings.Contains(err.Error(), "ter2") {
			t.Errorf("%q: error shows the password: %s", raw, err)
		}
	}
}

func TestRedactUserInfo(t *testing.T) {
	tests := map[string]string{
		"redis://redis:6379/0":       "redis://redis:6379/0",
		"redis://:pw@redis:6379/0":   "redis://xxxxx@redis:6379/0",
		"rediss://u:p/w?x#y@redis":   "rediss://xxxxx@redis",
		"redis://u:p@w@redis":        "redis://xxxxx@redis",
		"u:pw@redis:6379":            "xxxxx@redis:6379",
		"h:pw://x@redis":             "xxxxx@redis", // "h:pw" is no scheme
		"unix://:pw@/run/redis.sock": "unix://xxxxx@/run/redis.sock",
		"redis://redis/?client=a@b":  "redis://xxxxx@b",
		"no user info, no scheme":    "no user info, no scheme",
		"1redis://u:pw@redis":        "xxxxx@redis",
		"re+dis.v-2://u:pw@redis":    "re+dis.v-2://xxxxx@redis",
	}
	for in, want := range tests {
		if got := redactUserInfo(in); got != want {
			t.Errorf("redactUserInfo(%q) = %q, want %q", in, got, want)
		}
	}
}

const wantRedisURL = "want a redis://, rediss:// or unix:// URL such as redis://:password@redis:6379/0"

func TestLoadRedisURLErrors(t *testing.T) {
	redis := func(u string) map[string]string {
		return map[string]string{"TRACECAR_IDEMPOTENCY_STORE": "redis", "TRACECAR_REDIS_URL": u}
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"redis with empty URL", redis(""),
			`TRACECAR_REDIS_URL: not set while TRACECAR_IDEMPOTENCY_STORE=redis; ` + wantRedisURL},
		{"redis URL http", redis("http://redis:6379"),
			`TRACECAR_REDIS_URL="http://redis:6379": scheme "http" not supported; ` + wantRedisURL},
		{"redis URL http with password", redis("http://u:hunter2@redis:6379"),
			`TRACECAR_REDIS_URL="http://xxxxx@redis:6379": scheme "http" not supported; ` + wantRedisURL},
		{"redis URL host:port", redis("redis.internal:6379"),
			`TRACECAR_REDIS_URL="redis.internal:6379": missing redis:// before host:port; ` + wantRedisURL},
		{"redis URL user:password@host", redis("default:hunter2@redis:6379"),
			`TRACECAR_REDIS_URL="xxxxx@redis:6379": missing redis:// before the user info; ` + wantRedisURL},
		{"redis URL without scheme", redis("//redis:6379"),
			`TRACECAR_REDIS_URL="//redis:6379": missing scheme; ` + wantRedisURL},
		{"redis URL opaque", redis("redis:redis:6379"),
			`TRACECAR_REDIS_URL="redis:redis:6379": missing // after the scheme; ` + wantRedisURL},
		{"redis URL without host", redis("redis:///0"),
			`TRACECAR_REDIS_URL="redis:///0": missing host; ` + wantRedisURL},
		{"redis URL bad host", redis("redis://red!s:6379"),
			`TRACECAR_REDIS_URL="redis://red!s:6379": invalid host; ` + wantRedisURL},
		{"redis URL port 0", redis("redis://redis:0"),
			`TRACECAR_REDIS_URL="redis://redis:0": port out of range; ` + wantRedisURL},
		{"redis URL port 65536", redis("redis://redis:65536"),
			`TRACECAR_REDIS_URL="redis://redis:65536": port out of range; ` + wantRedisURL},
		{"redis URL named port", redis("redis://redis:redis"),
			`TRACECAR_REDIS_URL="redis://redis:redis": not a URL: invalid port ":redis" after host; ` + wantRedisURL},
		{"redis URL db word", redis("redis://redis/zero"),
			`TRACECAR_REDIS_URL="redis://redis/zero": database number not a non-negative integer; ` + wantRedisURL},
		{"redis URL db negative", redis("redis://redis/-1"),
			`TRACECAR_REDIS_URL="redis://redis/-1": database number not a non-negative integer; ` + wantRedisURL},
		{"redis URL db huge", redis("redis://redis/99999999999"),
			`TRACECAR_REDIS_URL="redis://redis/99999999999": database number not a non-negative integer; ` + wantRedisURL},
		{"redis URL long path", redis("redis://redis/0/1"),
			`TRACECAR_REDIS_URL="redis://redis/0/1": path other than /db; ` + wantRedisURL},
		{"redis URL db twice", redis("redis://redis/1?db=2"),
			`TRACECAR_REDIS_URL="redis://redis/1?db=2": database number given twice; ` + wantRedisURL},
		{"redis URL db query twice", redis("redis://redis?db=1&db=2"),
			`TRACECAR_REDIS_URL="redis://redis?db=1&db=2": database number given twice; ` + wantRedisURL},
		{"redis URL db query word", redis("unix:///run/redis.sock?db=x"),
			`TRACECAR_REDIS_URL="unix:///run/redis.sock?db=x": database number not a non-negative integer; ` + wantRedisURL},
		{"redis URL other option", redis("redis://redis?dial_timeout=3s"),
			`TRACECAR_REDIS_URL="redis://redis?dial_timeout=3s": query option other than db; ` + wantRedisURL},
		{"redis URL bad query", redis("redis://redis?db=1;x"),
			`TRACECAR_REDIS_URL="redis://redis?db=1;x": invalid query; ` + wantRedisURL},
		{"redis URL fragment", redis("redis://redis#0"),
			`TRACECAR_REDIS_URL="redis://redis#0": fragment not allowed; ` + wantRedisURL},
		{"unix URL with host", redis("unix://redis.sock"),
			`TRACECAR_REDIS_URL="unix://redis.sock": host not allowed, only a socket path as in unix:///run/redis.sock; ` + wantRedisURL},
		{"unix URL without path", redis("unix://"),
			`TRACECAR_REDIS_URL="unix://": missing socket path; ` + wantRedisURL},
		{"unix URL relative", redis("unix:redis.sock"),
			`TRACECAR_REDIS_URL="unix:redis.sock": socket path not absolute; ` + wantRedisURL},
		{"bad URL with memory store", map[string]string{"TRACECAR_REDIS_URL": "redis://redis/x"},
			`TRACECAR_REDIS_URL="redis://redis/x": database number not a non-negative integer; ` + wantRedisURL},
		// The password is masked in the value and never part of a reason.
		{"password masked", redis("redis://:hunter2@redis:0"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis:0": port out of range; ` + wantRedisURL},
		{"password with slash", redis("redis://:hun/ter2@redis"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis": invalid user info; ` + wantRedisURL},
		{"password with question mark", redis("redis://default:hun?ter2@redis"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis": invalid user info; ` + wantRedisURL},
		{"password with hash", redis("redis://u:hun#ter2@redis"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis": invalid user info; ` + wantRedisURL},
		{"password with slash and digits", redis("redis://u:1/23@redis"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis": database number not a non-negative integer; ` + wantRedisURL},
		{"password bad escape", redis("redis://:hunter2%zz@redis"),
			`TRACECAR_REDIS_URL="redis://xxxxx@redis": invalid user info; ` + wantRedisURL},
		{"password and bad host", redis("redis://:hunter2@[::1"),
			`TRACECAR_REDIS_URL="redis://xxxxx@[::1": not a URL: missing ']' in host; ` + wantRedisURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantLoadError(t, tt.env, tt.want) })
	}
}
