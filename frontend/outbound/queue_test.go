package outbound

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testMessage = "From: <a@example.org>\r\nTo: <b@example.net>\r\nSubject: hello\r\n\r\nbody line\r\n.leading dot\r\n"

var testEnvelope = Envelope{From: "a@example.org", To: []string{"b@example.net"}}

func enqueue(t *testing.T, q *Queue, env Envelope, msg string) {
	t.Helper()
	if err := q.Enqueue(context.Background(), env, []byte(msg)); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

// checkReceived checks the relay got exactly msg with env.
func checkReceived(t *testing.T, got received, env Envelope, msg string) {
	t.Helper()
	if got.from != env.From || !slices.Equal(got.to, env.To) {
		t.Errorf("relay envelope: from %q to %q, want from %q to %q", got.from, got.to, env.From, env.To)
	}
	if !bytes.Equal(got.data, []byte(msg)) {
		t.Errorf("relay got\n%q\nwant\n%q", got.data, msg)
	}
}

func TestRelayDownAtEnqueueThenUp(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	q := newQueue(t, testConfig(t, addr, dir))
	enqueue(t, q, testEnvelope, testMessage)
	// Enqueue returned with the relay down: the message is in the spool
	// and attempts fail.
	if files := spoolFiles(t, dir); len(files) != 1 {
		t.Fatalf("spool holds %v, want one message", files)
	}
	waitStats(t, q, "a failed attempt", func(s Stats) bool { return s.Retried >= 1 })
	if s := q.Stats(); s.Sent != 0 || s.Pending != 1 || s.Queued != 1 {
		t.Fatalf("with the relay down: %+v", s)
	}

	relay := startRelay(t, addr, relayOptions{})
	s := waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	if s.Pending != 0 || s.PendingBytes != 0 || s.Failed != 0 {
		t.Errorf("after delivery: %+v", s)
	}
	got := relay.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	checkReceived(t, got[0], testEnvelope, testMessage)
	if files := spoolFiles(t, dir); len(files) != 0 {
		t.Errorf("spool still holds %v after delivery", files)
	}
}

func TestTemporaryFailureThenSuccess(t *testing.T) {
	relay := startRelay(t, "", relayOptions{tempFailures: 2})
	q := newQueue(t, testConfig(t, relay.addr, t.TempDir()))
	enqueue(t, q, testEnvelope, testMessage)
	s := waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	if s.Retried != 2 || s.Failed != 0 || s.Pending != 0 {
		t.Errorf("after two 451 and a 250: %+v, want 2 retries", s)
	}
	got := relay.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	checkReceived(t, got[0], testEnvelope, testMessage)
}

func TestPermanentFailureDrops(t *testing.T) {
	relay := startRelay(t, "", relayOptions{refuse: []string{"b@example.net"}})
	dir := t.TempDir()
	q := newQueue(t, testConfig(t, relay.addr, dir))
	enqueue(t, q, testEnvelope, testMessage)
	s := waitStats(t, q, "failed 1", func(s Stats) bool { return s.Failed == 1 })
	if s.Sent != 0 || s.Retried != 0 || s.Pending != 0 {
		t.Errorf("after a 550: %+v, want dropped without retry", s)
	}
	if n := len(relay.messages()); n != 0 {
		t.Errorf("relay got %d messages", n)
	}
	if files := spoolFiles(t, dir); len(files) != 0 {
		t.Errorf("spool still holds %v after a 550", files)
	}
}

func TestPartialRecipientFailure(t *testing.T) {
	relay := startRelay(t, "", relayOptions{refuse: []string{"gone@example.net"}})
	q := newQueue(t, testConfig(t, relay.addr, t.TempDir()))
	env := Envelope{From: "a@example.org", To: []string{"gone@example.net", "b@example.net"}}
	enqueue(t, q, env, testMessage)
	s := waitStats(t, q, "sent 1, failed 1", func(s Stats) bool { return s.Sent == 1 && s.Failed == 1 })
	if s.Pending != 0 {
		t.Errorf("after one 550 and one 250: %+v", s)
	}
	got := relay.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	checkReceived(t, got[0], Envelope{From: env.From, To: []string{"b@example.net"}}, testMessage)
}

func TestRestartPicksUpSpool(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	q1, err := New(testConfig(t, addr, dir))
	if err != nil {
		t.Fatal(err)
	}
	envNull := Envelope{From: "", To: []string{"c@example.net"}}
	enqueue(t, q1, testEnvelope, testMessage)
	enqueue(t, q1, envNull, "Subject: two\r\n\r\nsecond\r\n")
	if err := q1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q1.Enqueue(context.Background(), testEnvelope, []byte(testMessage)); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
	// A torn file from a crash between create and rename, and a corrupt one.
	if err := os.WriteFile(filepath.Join(dir, spoolTmpDir, "x-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "corrupt"+spoolExt), []byte("strata-outbound 1\n{\"to\":[]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	relay := startRelay(t, addr, relayOptions{})
	q2 := newQueue(t, testConfig(t, addr, dir))
	// The relay is up, so one may already be sent: both were picked up either way.
	if s := q2.Stats(); uint64(s.Pending)+s.Sent != 2 {
		t.Fatalf("after restart: %+v, want the 2 spooled messages pending or sent", s)
	}
	waitStats(t, q2, "sent 2", func(s Stats) bool { return s.Sent == 2 })
	got := relay.messages()
	if len(got) != 2 {
		t.Fatalf("relay got %d messages, want 2", len(got))
	}
	slices.SortFunc(got, func(a, b received) int { return strings.Compare(a.to[0], b.to[0]) })
	checkReceived(t, got[0], testEnvelope, testMessage)
	checkReceived(t, got[1], envNull, "Subject: two\r\n\r\nsecond\r\n")
	if _, err := os.Stat(filepath.Join(dir, spoolBadDir, "corrupt"+spoolExt)); err != nil {
		t.Errorf("corrupt spool file not set aside: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, spoolTmpDir)); len(left) != 0 {
		t.Errorf("tmp/ still holds %d files", len(left))
	}
}

func TestStartTLSWithAuth(t *testing.T) {
	ca := newTestCA(t)
	relay := startRelay(t, "", relayOptions{tls: ca.serverTLS(), user: "strata", pass: "s3cret"})
	pool, err := LoadCAFile(ca.file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, relay.addr, t.TempDir())
	cfg.TLS, cfg.RootCAs, cfg.Username, cfg.Password = TLSStartTLS, pool, "strata", "s3cret"
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	got := relay.messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	if !got[0].tls || got[0].authUser != "strata" {
		t.Errorf("relay saw tls=%v auth=%q, want TLS and user strata", got[0].tls, got[0].authUser)
	}
	checkReceived(t, got[0], testEnvelope, testMessage)
}

func TestImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	relay := startRelay(t, "", relayOptions{tls: ca.serverTLS(), implicit: true, user: "strata", pass: "s3cret"})
	cfg := testConfig(t, relay.addr, t.TempDir())
	cfg.TLS, cfg.RootCAs, cfg.Username, cfg.Password = TLSImplicit, ca.pool, "strata", "s3cret"
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	if got := relay.messages(); len(got) != 1 || !got[0].tls || got[0].authUser != "strata" {
		t.Errorf("relay got %+v, want one message over TLS from user strata", got)
	}
}

func TestTLSFailuresKeepTheMessage(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name  string
		relay relayOptions
		cfg   func(*Config)
	}{
		// The relay's certificate is not signed by the system roots.
		{"unverified certificate", relayOptions{tls: ca.serverTLS()}, func(c *Config) { c.TLS = TLSStartTLS }},
		{"unverified certificate with may", relayOptions{tls: ca.serverTLS()}, func(c *Config) { c.TLS = TLSMay }},
		{"STARTTLS required, not offered", relayOptions{}, func(c *Config) { c.TLS, c.RootCAs = TLSStartTLS, ca.pool }},
		{"wrong password", relayOptions{tls: ca.serverTLS(), user: "strata", pass: "s3cret"}, func(c *Config) {
			c.TLS, c.RootCAs, c.Username, c.Password = TLSStartTLS, ca.pool, "strata", "wrong"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := startRelay(t, "", tc.relay)
			cfg := testConfig(t, relay.addr, t.TempDir())
			tc.cfg(&cfg)
			q := newQueue(t, cfg)
			enqueue(t, q, testEnvelope, testMessage)
			s := waitStats(t, q, "two failed attempts", func(s Stats) bool { return s.Retried >= 2 })
			if s.Sent != 0 || s.Failed != 0 || s.Pending != 1 {
				t.Errorf("%+v: want the message kept for later", s)
			}
			if n := len(relay.messages()); n != 0 {
				t.Errorf("relay got %d messages", n)
			}
		})
	}
}

func TestMayWithoutSTARTTLSSendsPlain(t *testing.T) {
	relay := startRelay(t, "", relayOptions{})
	cfg := testConfig(t, relay.addr, t.TempDir())
	cfg.TLS = TLSMay
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	if got := relay.messages(); len(got) != 1 || got[0].tls {
		t.Errorf("relay got %+v, want one message in plaintext", got)
	}
}

func TestSpoolLimits(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(t, addr, t.TempDir())
	cfg.MaxMessages = 2
	cfg.MaxBytes = int64(2*len(testMessage) + 10)
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	err := q.Enqueue(context.Background(), testEnvelope, []byte(testMessage+testMessage))
	if !errors.Is(err, ErrSpoolFull) || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("Enqueue over MaxBytes: %v, want ErrSpoolFull about bytes", err)
	}
	enqueue(t, q, testEnvelope, testMessage)
	err = q.Enqueue(context.Background(), testEnvelope, []byte("x"))
	if !errors.Is(err, ErrSpoolFull) || !strings.Contains(err.Error(), "2 messages") {
		t.Errorf("Enqueue over MaxMessages: %v, want ErrSpoolFull about messages", err)
	}
	if s := q.Stats(); s.Queued != 2 || s.Pending != 2 {
		t.Errorf("%+v: want the 2 accepted messages", s)
	}
}

func TestMaxAgeGivesUp(t *testing.T) {
	cfg := testConfig(t, freeAddr(t), t.TempDir())
	cfg.MaxAge = 1 // every failed attempt finds the message too old
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	s := waitStats(t, q, "failed 1", func(s Stats) bool { return s.Failed == 1 })
	if s.Pending != 0 || s.Sent != 0 || s.Retried != 0 {
		t.Errorf("after expiry: %+v", s)
	}
	if files := spoolFiles(t, cfg.SpoolDir); len(files) != 0 {
		t.Errorf("spool still holds %v", files)
	}
}

func TestEnqueueRefusesBadInput(t *testing.T) {
	q := newQueue(t, testConfig(t, freeAddr(t), t.TempDir()))
	for _, tc := range []struct {
		env Envelope
		msg string
	}{
		{Envelope{From: "a@example.org"}, testMessage},
		{Envelope{From: "a@example.org", To: []string{"b@example.net\r\nRCPT TO:<c@example.net>"}}, testMessage},
		{Envelope{From: "a b@example.org", To: []string{"b@example.net"}}, testMessage},
		{Envelope{From: "a@example.org", To: []string{"no-domain"}}, testMessage},
		{Envelope{From: "<a@example.org>", To: []string{"b@example.net"}}, testMessage},
		{testEnvelope, ""},
	} {
		if err := q.Enqueue(context.Background(), tc.env, []byte(tc.msg)); err == nil {
			t.Errorf("Enqueue(%+v, %q) accepted", tc.env, tc.msg)
		}
	}
	if s := q.Stats(); s.Queued != 0 || s.Pending != 0 {
		t.Errorf("%+v after refused input", s)
	}
	for _, cfg := range []Config{
		{SpoolDir: t.TempDir()},
		{Relay: "no-port", SpoolDir: t.TempDir()},
		{Relay: "127.0.0.1:25", TLS: "sometimes", SpoolDir: t.TempDir()},
		{Relay: "127.0.0.1:25"},
	} {
		if q, err := New(cfg); err == nil {
			q.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestNonASCIIAddressNeedsSMTPUTF8(t *testing.T) {
	env := Envelope{From: "a@example.org", To: []string{"jörg@example.net"}}
	plain := startRelay(t, "", relayOptions{})
	q := newQueue(t, testConfig(t, plain.addr, t.TempDir()))
	enqueue(t, q, env, testMessage)
	// RFC 6531 3.4: without SMTPUTF8 the relay can never take it.
	s := waitStats(t, q, "failed 1", func(s Stats) bool { return s.Failed == 1 })
	if s.Retried != 0 || s.Sent != 0 || len(plain.messages()) != 0 {
		t.Errorf("relay without SMTPUTF8: %+v", s)
	}

	utf8 := startRelay(t, "", relayOptions{smtputf8: true})
	q = newQueue(t, testConfig(t, utf8.addr, t.TempDir()))
	enqueue(t, q, env, testMessage)
	waitStats(t, q, "sent 1", func(s Stats) bool { return s.Sent == 1 })
	if got := utf8.messages(); len(got) != 1 || got[0].to[0] != "jörg@example.net" {
		t.Errorf("relay with SMTPUTF8 got %+v", got)
	}
}

func TestSpoolFileCorruptedWhileQueued(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	// A second of backoff: the file is spoiled and the relay started between two attempts,
	// not while one has read the good file and is dialling (which then sent it).
	cfg := testConfig(t, addr, dir)
	cfg.MinBackoff, cfg.MaxBackoff = time.Second, time.Second
	q := newQueue(t, cfg)
	enqueue(t, q, testEnvelope, testMessage)
	waitStats(t, q, "a failed attempt", func(s Stats) bool { return s.Retried >= 1 })
	files := spoolFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("spool holds %v", files)
	}
	if err := os.WriteFile(files[0], []byte("strata-outbound 1\n{\"size\":99}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	relay := startRelay(t, addr, relayOptions{})
	s := waitStats(t, q, "failed 1", func(s Stats) bool { return s.Failed == 1 })
	if s.Pending != 0 || s.Sent != 0 || len(relay.messages()) != 0 {
		t.Errorf("%+v, relay got %d", s, len(relay.messages()))
	}
	if _, err := os.Stat(filepath.Join(dir, spoolBadDir, filepath.Base(files[0]))); err != nil {
		t.Errorf("unreadable file not in bad/: %v", err)
	}
}

func TestCollector(t *testing.T) {
	relay := startRelay(t, "", relayOptions{tempFailures: 1, refuse: []string{"gone@example.net"}})
	q := newQueue(t, testConfig(t, relay.addr, t.TempDir()))
	enqueue(t, q, testEnvelope, testMessage)
	enqueue(t, q, Envelope{From: "", To: []string{"gone@example.net"}}, testMessage)
	waitStats(t, q, "sent 1, failed 1", func(s Stats) bool { return s.Sent == 1 && s.Failed == 1 })
	want := `
# HELP strata_outbound_deferred_total Attempts that failed temporarily (relay down, 4xx, TLS or AUTH failure) and were scheduled again.
# TYPE strata_outbound_deferred_total counter
strata_outbound_deferred_total 1
# HELP strata_outbound_failed_total Messages done with that had a recipient given up: refused with 5xx, or still failing after the maximum age.
# TYPE strata_outbound_failed_total counter
strata_outbound_failed_total 1
# HELP strata_outbound_queued_total Messages delivery generated (redirect, vacation, reject) that the outbound queue accepted.
# TYPE strata_outbound_queued_total counter
strata_outbound_queued_total 2
# HELP strata_outbound_sent_total Messages done with that the relay accepted for at least one recipient.
# TYPE strata_outbound_sent_total counter
strata_outbound_sent_total 1
# HELP strata_outbound_spool_bytes Bytes of the messages in the outbound spool.
# TYPE strata_outbound_spool_bytes gauge
strata_outbound_spool_bytes 0
# HELP strata_outbound_spool_messages Messages in the outbound spool.
# TYPE strata_outbound_spool_messages gauge
strata_outbound_spool_messages 0
`
	if err := testutil.CollectAndCompare(q.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
