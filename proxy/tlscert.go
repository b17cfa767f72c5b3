package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often CertFiles looks at its files for a change.
const certCheckInterval = time.Second

// CertFiles serves the certificate of a PEM certificate and key file pair
// and reloads it when either file changes, so a rotated certificate (a
// Kubernetes Secret or cert-manager renewal updates the mounted files in
// place) takes effect on the next handshake without a restart. A pair that
// fails to load keeps the previous certificate in service, with a warning.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time // modification times of the loaded pair
	checked time.Time
	failed  [2]time.Time // the pair that last failed, warned about once
}

// LoadCertFiles loads the pair, failing when it does not load: a sidecar
// must not start with a listener it cannot serve.
func LoadCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return c, nil
}

func (c *CertFiles) stat() ([2]time.Time, error) {
	var t [2]time.Time
	for i, name := range [2]string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return t, fmt.Errorf("TLS file: %w", err)
		}
		t[i] = fi.ModTime()
	}
	return t, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= certCheckInterval {
		c.checked = now
		c.reload()
	}
	return c.cert, nil
}

// reload loads the pair again when a file changed since the last load.
func (c *CertFiles) reload() {
	stamp, err := c.stat()
	if err == nil && stamp == c.stamp {
		return
	}
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(c.certFile, c.keyFile); err == nil {
			c.cert, c.stamp = &cert, stamp
			c.log.Info("TLS certificate reloaded", slog.String("cert_file", c.certFile))
			return
		}
	}
	if stamp != c.failed {
		// Mid-rotation the two files may briefly disagree; the next check
		// picks up the finished pair.
		c.failed = stamp
		c.log.Warn("TLS certificate reload failed; serving the previous one",
			slog.String("cert_file", c.certFile), slog.Any("error", err))
	}
}

// ServerTLSConfig is the TLS configuration of a listener serving the
// certificate of c: TLS 1.2 or later, the certificate reloaded as its files
// change. http.Server adds the ALPN protocols (h2, http/1.1).
func ServerTLSConfig(c *CertFiles) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
