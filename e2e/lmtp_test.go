package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestPythonSmtplibLMTP runs Python's smtplib.LMTP against `strata serve` and reads what
// it delivered back over IMAP.
func TestPythonSmtplibLMTP(t *testing.T) {
	python := requireTool(t, "python3", "python3")
	srv := startServe(t, t.TempDir(), "--max-message-size", "4096")
	host, port, err := net.SplitHostPort(srv.lmtpAddr)
	if err != nil {
		t.Fatalf("LMTP address %q: %v", srv.lmtpAddr, err)
	}
	out, err := exec.Command(python, "testdata/lmtp_session.py", host, port).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("smtplib session failed: %v\n%s", err, out)
	}
	bodies := inboxBodies(t, srv.login(t), 2)
	if !strings.Contains(bodies[0], "\r\nDelivered-To: demo@example.com\r\n") || !strings.HasSuffix(bodies[0], "\r\n\r\nHello\r\n.dot line\r\n") {
		t.Errorf("first message:\n%s", bodies[0])
	}
	if !strings.Contains(bodies[1], "Subject: caf\u00e9 from smtplib") {
		t.Errorf("8-bit message:\n%s", bodies[1])
	}
}

// TestSwaksLMTP delivers with swaks --protocol LMTP to two recipients, one unknown, and
// checks the per-recipient replies and the message read back over IMAP.
func TestSwaksLMTP(t *testing.T) {
	swaks := requireTool(t, "swaks", "swaks")
	srv := startServe(t, t.TempDir())
	out, err := exec.Command(swaks, "--protocol", "LMTP", "--server", srv.lmtpAddr,
		"--from", "sw@example.org", "--to", "demo@example.com,nobody@example.com,demo+work@example.com",
		"--header", "Subject: from swaks", "--body", "swaks body").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	for _, want := range []string{
		"<** 550 5.1.1 No such user here",
		"<-  250 2.0.0 <demo@example.com> OK",
		"<-  250 2.0.0 <demo+work@example.com> OK",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks output lacks %q:\n%s", want, out)
		}
	}
	bodies := inboxBodies(t, srv.login(t), 2) // no "work" mailbox: both into INBOX
	for _, b := range bodies {
		if !strings.Contains(b, "Subject: from swaks") || strings.Contains(b, "Delivered-To") {
			t.Errorf("message to two recipients:\n%s", b)
		}
	}
}

// TestLMTPOnEveryInterface: `strata serve --lmtp-listen 0.0.0.0:0` starts, and a client from
// loopback (a trusted source) is greeted; a connection from a public address is refused
// with 554 5.7.1 (frontend/lmtp privateListener, tested there with a public source, which
// this machine cannot make).
func TestLMTPOnEveryInterface(t *testing.T) {
	srv := startServe(t, t.TempDir(), "--lmtp-listen", "0.0.0.0:0")
	_, port, err := net.SplitHostPort(srv.lmtpAddr)
	if err != nil {
		t.Fatalf("LMTP address %q: %v", srv.lmtpAddr, err)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	greeting := make([]byte, 512)
	n, err := conn.Read(greeting)
	if err != nil || !strings.HasPrefix(string(greeting[:n]), "220 ") {
		t.Fatalf("greeting on the wildcard listener: %q, %v", greeting[:n], err)
	}
}

// TestPostfixRelaysOverLMTP has a real Postfix accept mail over SMTP and relay it to Strata
// over LMTP; the messages are read back over IMAP, and the bounce of an unknown recipient
// shows in Postfix's log.
func TestPostfixRelaysOverLMTP(t *testing.T) {
	python := requireTool(t, "python3", "python3")
	srv := startServe(t, t.TempDir())
	srv.mustAdmin(t, "mailbox", "create", "demo@example.com", "lists")
	pf := startPostfix(t, srv.lmtpAddr)
	script := fmt.Sprintf(`
import smtplib
s = smtplib.SMTP("127.0.0.1", %s)
s.ehlo("client.test")
s.sendmail("sender@example.org", ["demo@example.com"], b"From: sender@example.org\r\nSubject: via postfix\r\nMessage-ID: <pf1@example.org>\r\n\r\nrelayed\r\n")
s.sendmail("sender@example.org", ["demo+lists@example.com", "nobody@example.com"], "From: sender@example.org\r\nSubject: caf\u00e9 via postfix\r\nMessage-ID: <pf2@example.org>\r\n\r\nna\u00efve\r\n".encode(), mail_options=["BODY=8BITMIME"])
s.sendmail("sender@example.org", ["demo@example.com"], "From: sender@example.org\r\nSubject: undeclared 8-bit\r\nMessage-ID: <pf3@example.org>\r\n\r\nna\u00efve\r\n".encode())
s.quit()
`, pf.smtpPort)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("SMTP to Postfix: %v\n%s", err, out)
	}
	c := srv.login(t)
	inbox := inboxBodies(t, c, 2)
	// Postfix's queue does not keep the order of submission: find each by its subject.
	for _, subject := range []string{"Subject: via postfix", "Subject: undeclared 8-bit"} {
		i := slices.IndexFunc(inbox, func(b string) bool { return strings.Contains(b, subject) })
		if i < 0 {
			t.Errorf("no INBOX message with %q", subject)
			continue
		}
		if !strings.Contains(inbox[i], "Delivered-To: demo@example.com\r\n") || !strings.HasPrefix(inbox[i], "Return-Path: <sender@example.org>\r\nReceived: from mta.test") {
			t.Errorf("INBOX message %d:\n%s", i+1, inbox[i])
		}
	}
	lists := mailboxBodies(t, c, "lists", 1)
	if !strings.Contains(lists[0], "Subject: caf\u00e9 via postfix") || !strings.Contains(lists[0], "Delivered-To: demo+lists@example.com\r\n") {
		t.Errorf("lists message:\n%s", lists[0])
	}
	pf.waitLog(t, "to=<nobody@example.com>", "said: 550 5.1.1")
}

// inboxBodies waits until INBOX holds n messages and returns their bodies in UID order.
func inboxBodies(t *testing.T, c *imapclient.Client, n int) []string {
	t.Helper()
	return mailboxBodies(t, c, "INBOX", n)
}

// mailboxBodies waits until the mailbox holds n messages (delivery through an MTA is
// asynchronous) and returns their bodies in UID order.
func mailboxBodies(t *testing.T, c *imapclient.Client, mailbox string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %s: %v", mailbox, err)
		}
		if int(*data.NumMessages) > n {
			t.Fatalf("%s holds %d messages, want %d", mailbox, *data.NumMessages, n)
		}
		if int(*data.NumMessages) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d messages after 60s, want %d", mailbox, *data.NumMessages, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("EXAMINE %s: %v", mailbox, err)
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	var bodies []string
	for _, m := range msgs {
		for _, b := range m.BodySection {
			bodies = append(bodies, string(b.Bytes))
		}
	}
	if len(bodies) != n {
		t.Fatalf("fetched %d bodies from %s, want %d", len(bodies), mailbox, n)
	}
	return bodies
}

// postfix is the one Postfix of this test binary: started on first use with its own
// configuration and queue in a temporary directory, its smtpd on a free loopback port,
// relaying the domain example.com over LMTP; stopped by TestMain.
type postfix struct {
	dir      string
	smtpPort string
	lmtpAddr string
}

var (
	postfixMu      sync.Mutex
	runningPostfix *postfix
)

// startPostfix starts the binary's Postfix relaying to lmtpAddr, or returns it if it runs
// already (for the same Strata: its transport is fixed at start).
func startPostfix(t *testing.T, lmtpAddr string) *postfix {
	t.Helper()
	postfixMu.Lock()
	defer postfixMu.Unlock()
	if runningPostfix != nil {
		if runningPostfix.lmtpAddr != lmtpAddr {
			t.Fatalf("Postfix relays to %s already; one Strata serves the Postfix tests", runningPostfix.lmtpAddr)
		}
		return runningPostfix
	}
	bin := requireTool(t, "postfix", "postfix")
	dir, err := os.MkdirTemp("", "strata-e2e-postfix")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as the postfix user: it must reach the queue and own the data
	// directory.
	for _, sub := range []string{"", "conf", "queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown postfix: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, smtpPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.test
mydomain = mta.test
myorigin = mta.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com
relay_recipient_maps =
transport_maps = texthash:%[1]s/conf/transport
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
disable_dns_lookups = yes
smtp_host_lookup = native
lmtp_host_lookup = native
alias_maps =
alias_database =
`, dir)
	masterCF := smtpPort + ` inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
`
	files := map[string]string{
		"conf/main.cf":   mainCF,
		"conf/master.cf": masterCF,
		"conf/transport": "example.com lmtp:inet:" + lmtpAddr + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(bin, "-c", filepath.Join(dir, "conf"), "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	runningPostfix = &postfix{dir: dir, smtpPort: smtpPort, lmtpAddr: lmtpAddr}
	// smtpd listens once master runs; wait for the port.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.Dial("tcp", "127.0.0.1:"+smtpPort)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Fatalf("Postfix smtpd not listening on %s: %v\n%s", smtpPort, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return runningPostfix
}

// waitLog waits until one line of Postfix's log holds all of parts.
func (p *postfix) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		log, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
		for _, line := range strings.Split(string(log), "\n") {
			found := true
			for _, part := range parts {
				found = found && strings.Contains(line, part)
			}
			if found {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Postfix log line with %q after 60s:\n%s", parts, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopPostfix stops the binary's Postfix, if it was started, and removes its directory.
func stopPostfix() {
	postfixMu.Lock()
	defer postfixMu.Unlock()
	if runningPostfix == nil {
		return
	}
	exec.Command("postfix", "-c", filepath.Join(runningPostfix.dir, "conf"), "stop").Run()
	os.RemoveAll(runningPostfix.dir)
	runningPostfix = nil
}
