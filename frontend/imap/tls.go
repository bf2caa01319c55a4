package imap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/strata-mail/strata/frontend/connserver"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/internal/fsync"
)

// KeyPair is the server's TLS certificate and key, read from two PEM files. Reload reads
// them again (on SIGHUP); connections that start after it present the new certificate,
// those already established keep theirs.
type KeyPair struct {
	certFile, keyFile string
	policy            TLSPolicy
	current           atomic.Pointer[tls.Certificate]
}

// TLSPolicy is what the TLS configuration of STARTTLS, IMAPS and ManageSieve accepts.
type TLSPolicy struct {
	// TLS13Only refuses TLS 1.2; by default TLS 1.2 is accepted with ECDHE key exchange
	// and AEAD ciphers only (modernCipherSuites), and TLS 1.3 (whose suites Go fixes).
	TLS13Only bool
	// OCSPFile, when set, is a DER OCSP response for the certificate, stapled in every
	// handshake (RFC 6066 8) and read again with the pair. It must name the certificate's
	// serial number and not be past its NextUpdate when read.
	OCSPFile string
}

// modernCipherSuites are the TLS 1.2 suites offered: forward secrecy (ECDHE) and AEAD
// (GCM, ChaCha20-Poly1305) only, as RFC 9325 4.2 recommends; no CBC, no RSA key exchange.
var modernCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// LoadKeyPair reads a PEM certificate chain and its private key, with the default policy.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	return LoadKeyPairWith(certFile, keyFile, TLSPolicy{})
}

// LoadKeyPairWith is LoadKeyPair under policy (and its OCSP response file).
func LoadKeyPairWith(certFile, keyFile string, policy TLSPolicy) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile, policy: policy}
	if err := kp.Reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Reload reads the certificate and key files (and the OCSP response file) again and, when
// they parse and match, makes them the pair new connections get. On error the previous
// pair stays in use.
func (kp *KeyPair) Reload() error {
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", kp.certFile, kp.keyFile, err)
	}
	if kp.policy.OCSPFile != "" {
		if cert.OCSPStaple, err = readOCSPStaple(kp.policy.OCSPFile, cert.Leaf); err != nil {
			return err
		}
	}
	kp.current.Store(&cert)
	return nil
}

// readOCSPStaple reads a DER OCSP response and checks that it is about leaf and current.
// Its signature is the client's to check (it needs the issuer, which the chain may lack).
func readOCSPStaple(path string, leaf *x509.Certificate) ([]byte, error) {
	der, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read OCSP response: %w", err)
	}
	resp, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		return nil, fmt.Errorf("OCSP response %s: %w", path, err)
	}
	if leaf == nil || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		return nil, fmt.Errorf("OCSP response %s is not about the certificate (serial %v)", path, resp.SerialNumber)
	}
	if !resp.NextUpdate.IsZero() && time.Now().After(resp.NextUpdate) {
		return nil, fmt.Errorf("OCSP response %s expired at %v", path, resp.NextUpdate)
	}
	return der, nil
}

// Certificate returns the pair in use.
func (kp *KeyPair) Certificate() *tls.Certificate { return kp.current.Load() }

// GetCertificate is a tls.Config.GetCertificate that returns the pair in use.
func (kp *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.current.Load(), nil
}

// TLSConfig returns the server TLS configuration for STARTTLS and IMAPS: the current pair,
// TLS 1.2 or later (RFC 8314 4.1) with modernCipherSuites, or TLS 1.3 only by the policy.
func (kp *KeyPair) TLSConfig() *tls.Config {
	cfg := &tls.Config{
		GetCertificate: kp.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   modernCipherSuites,
	}
	if kp.policy.TLS13Only {
		cfg.MinVersion = tls.VersionTLS13
	}
	return cfg
}

// selfSignedValidity is how long a generated certificate is valid.
const selfSignedValidity = 5 * 365 * 24 * time.Hour

// EnsureSelfSigned writes a self-signed ECDSA P-256 certificate for hosts (DNS names and IP
// addresses) and its key to certFile and keyFile unless both exist. It reports whether it
// created them. The key file is readable by its owner only.
func EnsureSelfSigned(certFile, keyFile string, hosts []string) (created bool, err error) {
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	if certErr == nil && keyErr == nil {
		return false, nil
	}
	for _, err := range []error{certErr, keyErr} {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("check TLS files: %w", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, fmt.Errorf("generate certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Strata"}, CommonName: "Strata self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can trust it as its own root
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return false, fmt.Errorf("create self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return false, fmt.Errorf("encode TLS key: %w", err)
	}
	for _, dir := range []string{filepath.Dir(certFile), filepath.Dir(keyFile)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("create TLS directory: %w", err)
		}
	}
	// The key first: a certificate without its key would stop the next start.
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return false, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// writePEM writes one PEM block to path, whole or not at all (fsync.WriteFile).
func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	return fsync.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), mode)
}

// handshakeTimeout bounds a TLS handshake, for IMAPS and after STARTTLS.
const handshakeTimeout = 30 * time.Second

// handshake runs the server side of a TLS handshake on the connection's socket.
func (c *conn) handshake(tc *tls.Conn) error {
	defer c.disarm()
	if err := tc.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return fmt.Errorf("set handshake deadline: %w", err)
	}
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	// Reads and writes set their own deadlines from here on.
	if err := tc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clear handshake deadline: %w", err)
	}
	c.useConn(tc)
	return nil
}

// useConn makes nc the connection that commands are read from and responses written to.
// Bytes read from the previous one and not yet used are dropped with the old framer.
func (c *conn) useConn(nc net.Conn) {
	c.nc = nc
	c.inflater = nil
	c.bw = newConnWriter(connserver.DeadlineWriter{Conn: nc, Timeout: c.srv.limits.WriteTimeout})
	c.framer = imapwire.NewFramer(flushingReader{r: nc, cw: c.bw}, maxLineLength)
}

// cmdStartTLS: RFC 9051 6.2.1. The tagged OK is written here, the handshake follows it at
// once; run writes nothing more (errAnswered).
func (c *conn) cmdStartTLS(cmd *imapwire.Command) error {
	if c.tlsActive() {
		return bad(imapresp.CodeClientBug, "TLS is already active") // RFC 5530 CLIENTBUG
	}
	if c.srv.cfg.TLS == nil {
		return no(imapresp.CodeCannot, "TLS is not configured on this server")
	}
	c.writeStatus(cmd.Tag, ok("", "Begin TLS negotiation now"))
	if err := c.bw.Flush(); err != nil {
		c.state = stateLogout
		return errAnswered
	}
	// RFC 9051 6.2.1, RFC 2595 3.1: the client sends nothing before the handshake. Anything
	// already read after the STARTTLS line is plaintext an attacker may have injected; it
	// is dropped with the plaintext framer (the STARTTLS command injection attack,
	// CVE-2011-0411 in other servers).
	if n := c.framer.Buffered(); n > 0 {
		c.log.Info("discarding plaintext sent after STARTTLS", "bytes", n)
	}
	if err := c.handshake(tls.Server(c.nc, c.srv.cfg.TLS)); err != nil {
		c.log.Debug("STARTTLS", "err", err)
		c.state = stateLogout
		return errAnswered
	}
	// RFC 9051 6.2.1: the server stays in the not authenticated state; the client must ask
	// for the capabilities again, which now lack STARTTLS and LOGINDISABLED.
	return errAnswered
}
