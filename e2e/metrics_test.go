package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format: name{labels} value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape of a sidecar's /metrics.
type metrics []sample

// scrape reads admin's /metrics with client.
func scrape(client *http.Client, admin string) (metrics, error) {
	resp, err := client.Get(admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", admin, resp.Status)
	}
	return parseMetrics(body)
}

// parseMetrics parses the Prometheus text exposition format, skipping
// comments. Label values may hold the format's escapes (\\, \", \n).
func parseMetrics(body []byte) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(rest, "{ "); i >= 0 && rest[i] == '{' {
			s.name = rest[:i]
			var err error
			if rest, err = parseLabels(rest[i+1:], s.labels); err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
		} else {
			s.name, rest, _ = strings.Cut(rest, " ")
		}
		fields := strings.Fields(rest) // value, then an optional timestamp
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels reads `k="v",...}` into labels and returns what follows '}'.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			return "", fmt.Errorf("bad labels at %q", s)
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(rest[i])
		}
		if i == len(rest) {
			return "", fmt.Errorf("unterminated label value at %q", s)
		}
		labels[strings.TrimSpace(name)] = v.String()
		s = rest[i+1:]
	}
}

// get returns the value of the series name whose labels include labels
// (pairs: name, value, ...), and whether there is one.
func (m metrics) get(name string, labels ...string) (float64, bool) {
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// sampler scrapes a sidecar's /metrics every pollInterval until stopped and
// keeps the largest value seen of each gauge it watches.
type sampler struct {
	stop  chan struct{}
	done  chan struct{}
	max   map[string]float64 // by metric name
	n     int                // scrapes that succeeded
	err   error              // the first scrape error
	names []string
}

// startSampler starts sampling, with client, the gauges names (series
// without labels) of the sidecar whose admin listener is admin.
func startSampler(client *http.Client, admin string, names ...string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{}), max: map[string]float64{}, names: names}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		for {
			m, err := scrape(client, admin)
			switch {
			case err != nil && s.err == nil:
				s.err = err
			case err == nil:
				s.n++
				for _, name := range s.names {
					if v, ok := m.get(name); ok && v > s.max[name] {
						s.max[name] = v
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns the largest value of each gauge. The
// caller reads s.n and s.err after it.
func (s *sampler) finish() map[string]float64 {
	close(s.stop)
	<-s.done
	return s.max
}
