package imap_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

// handshake dials addr with cfg and reports the handshake's error.
func tlsHandshake(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(raw, cfg)
	err = tc.Handshake()
	return tc.ConnectionState(), err
}

// TestTLSPolicyDefault: IMAPS takes TLS 1.2 with an ECDHE AEAD suite and TLS 1.3, and
// refuses TLS 1.1, CBC suites and RSA key exchange (RFC 9325 4.2).
func TestTLSPolicyDefault(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPSListen = "127.0.0.1:0" })
	addr := srv.IMAPSAddr()
	for _, c := range []struct {
		name  string
		cfg   *tls.Config
		works bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 AEAD", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 CBC-SHA256", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
	} {
		c.cfg.InsecureSkipVerify = true
		_, err := tlsHandshake(t, addr, c.cfg)
		if (err == nil) != c.works {
			t.Errorf("%s: handshake error %v, want success %v", c.name, err, c.works)
		}
	}
}

// TestTLSPolicyTLS13Only: with TLS13Only, TLS 1.2 is refused on IMAPS and STARTTLS.
func TestTLSPolicyTLS13Only(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPSListen = "127.0.0.1:0"
		cfg.TLSPolicy.TLS13Only = true
	})
	if _, err := tlsHandshake(t, srv.IMAPSAddr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("IMAPS accepted TLS 1.2")
	}
	st, err := tlsHandshake(t, srv.IMAPSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("IMAPS with TLS 1.3: %v, version %x", err, st.Version)
	}
	rc := dialRaw(t, srv)
	rc.write("s STARTTLS\r\n")
	if got := rc.readLine(); !strings.HasPrefix(got, "s OK") {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(rc.conn, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Error("STARTTLS accepted TLS 1.2")
	}
}

// TestOCSPStapling: the OCSP response file is stapled in IMAPS handshakes and verifies
// against the issuing CA; a response about another certificate is refused at load.
func TestOCSPStapling(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := testCA(t)
	leaf, leafKey := testLeaf(t, ca, caKey, 1001)
	certFile, keyFile := writePair(t, dir, leaf, leafKey)
	ocspFile := filepath.Join(dir, "ocsp.der")
	staple := testOCSP(t, ca, caKey, leaf.SerialNumber)
	if err := os.WriteFile(ocspFile, staple, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPSListen = "127.0.0.1:0"
		cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
		cfg.TLSPolicy.OCSPFile = ocspFile
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	st, err := tlsHandshake(t, srv.IMAPSAddr(), &tls.Config{RootCAs: pool, ServerName: "mail.test"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.OCSPResponse, staple) {
		t.Fatalf("stapled %d bytes, want the file's %d", len(st.OCSPResponse), len(staple))
	}
	resp, err := ocsp.ParseResponseForCert(st.OCSPResponse, st.PeerCertificates[0], ca)
	if err != nil || resp.Status != ocsp.Good {
		t.Errorf("stapled response: %v, status %v", err, resp)
	}

	// A response about another serial is refused.
	if err := os.WriteFile(ocspFile, testOCSP(t, ca, caKey, big.NewInt(999)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := imap.LoadKeyPairWith(certFile, keyFile, imap.TLSPolicy{OCSPFile: ocspFile}); err == nil {
		t.Error("a response for another certificate was loaded")
	}
}

// testCA is a self-signed CA certificate and its key.
func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
}

// testLeaf is a server certificate for mail.test issued by ca.
func testLeaf(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, serial int64) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "mail.test"}, DNSNames: []string{"mail.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
}

// testCert makes a P-256 key and a certificate of tmpl for it, valid for an hour around
// now, signed by parent (nil: self-signed).
func testCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePair(t *testing.T, dir string, cert *x509.Certificate, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// testOCSP is a Good OCSP response for serial signed by the CA itself.
func testOCSP(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, serial *big.Int) []byte {
	t.Helper()
	der, err := ocsp.CreateResponse(ca, ca, ocsp.Response{
		Status: ocsp.Good, SerialNumber: serial,
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
	}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
