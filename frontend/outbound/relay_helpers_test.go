package outbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/internal/testwait"
)

// waitLimit is the failsafe of every wait: far beyond what a loaded
// machine needs, never an assertion about speed.
const waitLimit = 30 * time.Second

// received is one message the test relay accepted.
type received struct {
	from     string
	to       []string
	data     []byte
	authUser string
	tls      bool
}

// testRelay is a real SMTP server (go-smtp) over TCP on loopback.
type testRelay struct {
	srv  *smtp.Server
	addr string

	mu sync.Mutex
	// tempFailures is how many DATA commands still get 451.
	tempFailures int
	// refuse are recipients RCPT TO answers 550 to.
	refuse map[string]bool
	// user and pass, when set, are required by AUTH PLAIN before MAIL.
	user, pass string
	got        []received
}

type relayOptions struct {
	tls          *tls.Config // offered with STARTTLS, or from the first byte with implicit
	implicit     bool
	user, pass   string
	tempFailures int
	refuse       []string
	smtputf8     bool
}

// startRelay serves SMTP on addr ("" for a free loopback port).
func startRelay(t *testing.T, addr string, o relayOptions) *testRelay {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relay listen: %v", err)
	}
	r := &testRelay{tempFailures: o.tempFailures, refuse: map[string]bool{}, user: o.user, pass: o.pass, addr: ln.Addr().String()}
	for _, a := range o.refuse {
		r.refuse[a] = true
	}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &relaySession{relay: r, tls: isTLS, conn: c}, nil
	}))
	r.srv.Domain = "relay.test"
	r.srv.AllowInsecureAuth = true
	r.srv.EnableSMTPUTF8 = o.smtputf8
	if o.tls != nil && !o.implicit {
		r.srv.TLSConfig = o.tls
	}
	if o.implicit {
		ln = tls.NewListener(ln, o.tls)
	}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *testRelay) messages() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type relaySession struct {
	relay  *testRelay
	conn   *smtp.Conn
	tls    bool
	authed string
	from   string
	to     []string
}

func (s *relaySession) AuthMechanisms() []string {
	if s.relay.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.relay.user || password != s.relay.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = username
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.relay.user != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if s.relay.refuse[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if s.relay.tempFailures > 0 {
		s.relay.tempFailures--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.relay.got = append(s.relay.got, received{from: s.from, to: s.to, data: data, authUser: s.authed, tls: isTLS || s.tls})
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testConfig is a queue configuration for tests: short backoff so retries
// come soon, and a log that goes to the test.
func testConfig(t *testing.T, relay, spoolDir string) Config {
	return Config{
		Relay:      relay,
		TLS:        TLSNone,
		HeloName:   "strata.test",
		SpoolDir:   spoolDir,
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		Timeout:    10 * time.Second,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func newQueue(t *testing.T, cfg Config) *Queue {
	t.Helper()
	q, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// waitStats waits until cond holds for the queue's counters.
func waitStats(t *testing.T, q *Queue, what string, cond func(Stats) bool) Stats {
	t.Helper()
	var s Stats
	testwait.Until(t, waitLimit, func() error {
		s = q.Stats()
		if !cond(s) {
			return fmt.Errorf("want %s, have %+v", what, s)
		}
		return nil
	})
	return s
}

// spoolFiles lists the queued message files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testCA is a certificate authority and a server certificate for
// 127.0.0.1 it signed.
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
	file   string // the CA certificate as PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{pool: x509.NewCertPool(), server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	ca.pool.AddCert(caCert)
	ca.file = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

func (ca *testCA) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.server}}
}
