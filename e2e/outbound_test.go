package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/strata-mail/strata/frontend/outbound"
	"github.com/strata-mail/strata/internal/testwait"
)

// outboundRelay is a real SMTP server (go-smtp) on loopback that requires AUTH PLAIN and
// records what it accepts.
type outboundRelay struct {
	user, pass string
	mu         sync.Mutex
	got        []outboundRelayed
}

type outboundRelayed struct {
	from, to, user string
	data           []byte
}

func (r *outboundRelay) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &outboundRelaySession{r: r}, nil
}

type outboundRelaySession struct {
	r        *outboundRelay
	user     string
	from, to string
}

func (s *outboundRelaySession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *outboundRelaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.r.user || pass != s.r.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}
func (s *outboundRelaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}
func (s *outboundRelaySession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *outboundRelaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.got = append(s.r.got, outboundRelayed{from: s.from, to: s.to, user: s.user, data: data})
	return nil
}
func (s *outboundRelaySession) Reset()        {}
func (s *outboundRelaySession) Logout() error { return nil }

// TestServeSendsQueuedOutboundMail checks the wiring of `strata serve --smtp-relay`: mail
// left in the outbound spool by an earlier process (here a queue whose relay was down) is
// sent after start through the relay, with AUTH PLAIN and the password from a file.
func TestServeSendsQueuedOutboundMail(t *testing.T) {
	dataDir := t.TempDir()
	spool := filepath.Join(dataDir, "outbound")

	// Fill the spool as a process that could not reach its relay would have.
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	q, err := outbound.New(outbound.Config{Relay: downAddr, TLS: outbound.TLSNone, SpoolDir: spool, MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: <demo@example.com>\r\nTo: <carol@example.net>\r\nSubject: queued\r\n\r\nsent after a restart\r\n"
	if err := q.Enqueue(context.Background(), outbound.Envelope{From: "", To: []string{"carol@example.net"}}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	q.Close()

	relay := &outboundRelay{user: "strata", pass: "relay-secret"}
	srv := smtp.NewServer(relay)
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	pwFile := filepath.Join(t.TempDir(), "relay-password")
	if err := os.WriteFile(pwFile, []byte("relay-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	startServe(t, dataDir, "--no-demo", "--smtp-relay", ln.Addr().String(), "--smtp-relay-tls", "none",
		"--smtp-relay-user", "strata", "--smtp-relay-password-file", pwFile)
	testwait.Until(t, 60*time.Second, func() error {
		relay.mu.Lock()
		defer relay.mu.Unlock()
		if len(relay.got) != 1 {
			return fmt.Errorf("relay has %d messages, want 1", len(relay.got))
		}
		return nil
	})
	got := relay.got[0]
	if got.from != "" || got.to != "carol@example.net" || got.user != "strata" || string(got.data) != msg {
		t.Errorf("relay got from %q to %q as %q:\n%q", got.from, got.to, got.user, got.data)
	}
	testwait.Until(t, 60*time.Second, func() error {
		left, _ := filepath.Glob(filepath.Join(spool, "*.msg"))
		if len(left) != 0 {
			return fmt.Errorf("spool still holds %v", left)
		}
		return nil
	})
}
