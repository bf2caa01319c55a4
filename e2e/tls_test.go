package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	imapserver "github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/testwait"
)

// TestServeTLS: `strata serve` generates a self-signed certificate in the data directory,
// answers IMAPS and STARTTLS with it, refuses plaintext LOGIN off loopback only (here
// loopback is trusted, so it checks the capability), and reloads the pair on SIGHUP.
func TestServeTLS(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)
	if srv.imapsAddr == "" {
		t.Fatal("no IMAPS address in the ready line")
	}
	certFile := filepath.Join(dataDir, "tls", "cert.pem")
	keyFile := filepath.Join(dataDir, "tls", "key.pem")
	pool := func() *x509.CertPool {
		pem, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatalf("generated certificate: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", certFile)
		}
		return pool
	}

	// IMAPS, verifying the certificate as `curl --cacert` would.
	c, err := imapclient.DialTLS(srv.imapsAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool(), ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatalf("IMAPS: %v", err)
	}
	defer c.Close()
	if err := c.Login("demo@example.com", "demo").Wait(); err != nil {
		t.Fatalf("LOGIN over IMAPS: %v", err)
	}
	if _, err := appendMessage(c, "INBOX", testMessage(1), nil); err != nil {
		t.Fatalf("APPEND over IMAPS: %v", err)
	}

	// STARTTLS on the IMAP port.
	st, err := imapclient.DialStartTLS(srv.imapAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool(), ServerName: "localhost"}})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer st.Close()
	if err := st.Login("demo@example.com", "demo").Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	data, err := st.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || data.NumMessages == nil || *data.NumMessages != 1 {
		t.Fatalf("STATUS after STARTTLS: %+v, %v", data, err)
	}

	// SIGHUP: a new pair in place of the old one is what new connections get.
	serial := func() string {
		conn, err := tls.Dial("tcp", srv.imapsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	os.Remove(certFile)
	os.Remove(keyFile)
	if _, err := imapserver.EnsureSelfSigned(certFile, keyFile, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, func() error {
		if serial() == before {
			return errors.New("certificate unchanged after SIGHUP")
		}
		return nil
	})
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("IMAPS connection made before SIGHUP: %v", err)
	}

	// A restart keeps the (new) pair rather than generating another.
	after := serial()
	srv.kill(syscall.SIGTERM)
	srv = startServe(t, dataDir)
	if got := serial(); got != after {
		t.Fatalf("serial after restart %s, want %s", got, after)
	}
}
