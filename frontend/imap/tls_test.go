package imap_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
	imapserver "github.com/strata-mail/strata/frontend/imap"
)

// certPool returns a pool holding the certificate the server presents.
func certPool(t *testing.T, srv *embedded.Server) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(srv.TLSCertFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", srv.TLSCertFile())
	}
	return pool
}

// handshake starts TLS on rc's socket, whose STARTTLS the server has accepted, verifying the
// server's certificate; rc then reads and writes through TLS.
func (rc *rawConn) handshake(srv *embedded.Server) {
	rc.t.Helper()
	tc := tls.Client(rc.conn, &tls.Config{RootCAs: certPool(rc.t, srv), ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("TLS handshake: %v", err)
	}
	rc.conn, rc.r = tc, bufio.NewReader(tc)
}

// startTLSServer is an embedded server with an IMAPS listener that, like a server on a
// public address, does not trust loopback for plaintext passwords.
func startTLSServer(t *testing.T) *embedded.Server {
	t.Helper()
	return startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPSListen = "127.0.0.1:0"
		cfg.AllowPlaintextAuth = false
		cfg.RequireTLSOnLoopback = true
	})
}

func TestSTARTTLSThenLogin(t *testing.T) {
	srv := startTLSServer(t)

	rc := dialRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " STARTTLS") || !contains(caps, " LOGINDISABLED") {
		t.Fatalf("plaintext CAPABILITY %q lacks STARTTLS or LOGINDISABLED", caps)
	}

	// imapclient's STARTTLS, verifying the generated certificate for 127.0.0.1.
	opts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: certPool(t, srv), ServerName: "127.0.0.1"}}
	c, err := imapclient.DialStartTLS(srv.IMAPAddr(), opts)
	if err != nil {
		t.Fatalf("DialStartTLS: %v", err)
	}
	defer c.Close()
	capSet, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if capSet.Has("STARTTLS") || capSet.Has(imap.CapLoginDisabled) || !capSet.Has(imap.Cap("AUTH=PLAIN")) {
		t.Errorf("CAPABILITY after STARTTLS: %v", capSet)
	}
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatalf("LOGIN over STARTTLS: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestSTARTTLSDiscardsInjectedPlaintext: commands sent in plaintext after STARTTLS, before
// the handshake, are dropped, not run after it (RFC 9051 6.2.1; the STARTTLS command
// injection attack). STARTTLS is refused once TLS is active (RFC 5530 CLIENTBUG).
func TestSTARTTLSDiscardsInjectedPlaintext(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.AllowPlaintextAuth = true })
	rc := dialRaw(t, srv)
	// One write: a man in the middle appends a command after the client's STARTTLS.
	rc.writeExpect("a1 STARTTLS\r\na2 LOGIN demo@example.com demo\r\n", "a1 OK")
	if n := rc.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes after the STARTTLS response", n)
	}
	rc.handshake(srv)
	// Still not authenticated: the injected LOGIN was not run, and nothing answers a2.
	untagged, tagged := rc.cmd("NOOP")
	if len(untagged) != 0 || !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("NOOP after STARTTLS: %q %q", untagged, tagged)
	}
	rc.expect("SELECT INBOX", "BAD")
	rc.expect("STARTTLS", "BAD [CLIENTBUG]")
	if caps := rc.ok("CAPABILITY"); contains(caps, "STARTTLS") {
		t.Errorf("CAPABILITY over TLS offers STARTTLS: %q", caps)
	}
	rc.ok("LOGIN demo@example.com demo")
	rc.expect("STARTTLS", "BAD") // not in the authenticated state
}

func TestIMAPS(t *testing.T) {
	srv := startTLSServer(t)
	opts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: certPool(t, srv), ServerName: "localhost"}}
	c, err := imapclient.DialTLS(srv.IMAPSAddr(), opts)
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer c.Close()
	capSet, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if capSet.Has("STARTTLS") || capSet.Has(imap.CapLoginDisabled) {
		t.Errorf("IMAPS CAPABILITY: %v", capSet)
	}
	if err := c.Login(embedded.DemoAccount, embedded.DemoPassword).Wait(); err != nil {
		t.Fatalf("LOGIN over IMAPS: %v", err)
	}
	uid := appendMessage(t, c, "INBOX", testMessage("over TLS", "hello"))
	if uid == 0 {
		t.Fatal("APPEND over IMAPS returned no UID")
	}

	// A client that does not trust the certificate fails the handshake.
	if c, err := imapclient.DialTLS(srv.IMAPSAddr(), &imapclient.Options{TLSConfig: &tls.Config{ServerName: "localhost"}}); err == nil {
		c.Close()
		t.Fatal("DialTLS without the certificate in the root pool succeeded")
	}
	// Nor does one that offers only TLS 1.1.
	conn, err := tls.Dial("tcp", srv.IMAPSAddr(), &tls.Config{RootCAs: certPool(t, srv), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 accepted (RFC 8314 4.1 wants 1.2 or later)")
	}
}

// TestTLSReload swaps the key pair as SIGHUP does: new connections see the new certificate,
// and a failed reload keeps the old one.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := imapserver.EnsureSelfSigned(certFile, keyFile, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPSListen = "127.0.0.1:0"
		cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	})
	if srv.TLSCertFile() != certFile {
		t.Fatalf("TLSCertFile = %q", srv.TLSCertFile())
	}
	serial := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.IMAPSAddr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	// An established connection keeps working across the reload.
	opts := &imapclient.Options{TLSConfig: &tls.Config{RootCAs: certPool(t, srv), ServerName: "localhost"}}
	c, err := imapclient.DialTLS(srv.IMAPSAddr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	os.Remove(certFile)
	os.Remove(keyFile)
	if _, err := imapserver.EnsureSelfSigned(certFile, keyFile, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTLS(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := serial()
	if after == before {
		t.Fatalf("serial %s unchanged after reload", after)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP on a connection made before the reload: %v", err)
	}

	// A broken key file: the reload fails and the pair in use stays.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.ReloadTLS(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if got := serial(); got != after {
		t.Fatalf("serial after a failed reload %s, want %s", got, after)
	}
}

// TestSelfSignedCertificate checks what strata serve generates on first start: a
// certificate for localhost, 127.0.0.1 and ::1, a key only its owner reads, and no new pair
// on the next start.
func TestSelfSignedCertificate(t *testing.T) {
	srv := startServer(t)
	certFile := srv.TLSCertFile()
	if want := filepath.Join("tls", "cert.pem"); !strings.HasSuffix(certFile, want) {
		t.Fatalf("generated certificate at %q", certFile)
	}
	pool := certPool(t, srv)
	raw, _ := os.ReadFile(certFile)
	kp, err := imapserver.LoadKeyPair(certFile, filepath.Join(filepath.Dir(certFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: time.Now()}); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	info, err := os.Stat(filepath.Join(filepath.Dir(certFile), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	created, err := imapserver.EnsureSelfSigned(certFile, filepath.Join(filepath.Dir(certFile), "key.pem"), []string{"localhost"})
	if err != nil || created {
		t.Fatalf("EnsureSelfSigned on existing files: created %v, %v", created, err)
	}
	if again, _ := os.ReadFile(certFile); string(again) != string(raw) {
		t.Fatal("certificate rewritten")
	}
}

// TestIdleOverTLS: a session in IDLE over TLS is woken for each change (its wait, a read
// inside crypto/tls, is ended by a read deadline each time and goes on, park.go), and DONE
// with a command after it in the same TLS record is read whole.
func TestIdleOverTLS(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.AllowPlaintextAuth = true })
	rc := dialRaw(t, srv)
	rc.ok("STARTTLS")
	rc.handshake(srv)
	rc.ok("LOGIN demo@example.com demo")
	rc.ok("SELECT INBOX")
	rc.startIdle("i")
	other := login(t, srv)
	for i := 1; i <= 3; i++ {
		appendMessage(t, other, "INBOX", testMessage(fmt.Sprintf("change %d", i), "body"))
		rc.waitFor(fmt.Sprintf("* %d EXISTS", i))
	}
	rc.write("DONE\r\nn NOOP\r\n")
	if _, tagged := rc.until("i"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("DONE: %q", tagged)
	}
	if _, tagged := rc.until("n"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("NOOP after DONE: %q", tagged)
	}
}
