package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestPythonImaplib runs a whole session of Python's standard imaplib against
// `strata serve` and then checks what it left on the server with another client.
func TestPythonImaplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required (the .ci/run script installs it): %v", err)
	}
	srv := startServe(t, t.TempDir())
	host, port, err := net.SplitHostPort(srv.imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/imaplib_session.py", host, port, "demo@example.com", "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib session failed: %v\n%s", err, out)
	}

	c := srv.login(t)
	sel, err := c.Select("Python", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT Python: %v", err)
	}
	if sel.NumMessages != 2 {
		t.Fatalf("Python holds %d messages after the imaplib session, want 2", sel.NumMessages)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	for i, m := range msgs {
		if want := "imaplib " + string(rune('0'+i)); m.Envelope.Subject != want {
			t.Errorf("message %d subject %q, want %q", i+1, m.Envelope.Subject, want)
		}
	}
	if hasFlag(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("message 1 was only peeked at but has \\Seen: %v", msgs[0].Flags)
	}
	if !hasFlag(msgs[1].Flags, imap.FlagSeen) || !hasFlag(msgs[1].Flags, imap.FlagFlagged) {
		t.Errorf("message 2 should have \\Seen (from BODY[TEXT]) and \\Flagged: %v", msgs[1].Flags)
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}

// TestPythonImaplibFull runs testdata/imaplib_full.py (NAMESPACE, LIST patterns, STATUS,
// APPEND with flags and date, header-field and partial fetches, BODYSTRUCTURE, silent
// stores, UID COPY and MOVE, SEARCH keys, EXPUNGE, RENAME, DELETE, IDLE) and checks what it
// left on the server with imapclient.
func TestPythonImaplibFull(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required (the .ci/run script installs it): %v", err)
	}
	srv := startServe(t, t.TempDir())
	host, port, err := net.SplitHostPort(srv.imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/imaplib_full.py", host, port, "demo@example.com", "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib session failed: %v\n%s", err, out)
	}

	c := srv.login(t)
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	if got, want := strings.Join(names, ","), "Archive,Drafts,INBOX,Junk,Py,Py/Renamed,Py/Sub,Sent,Trash"; got != want {
		t.Errorf("mailboxes after the session: %s, want %s", got, want)
	}

	fetchAll := func(mailbox string) []*imapclient.FetchMessageBuffer {
		t.Helper()
		sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("EXAMINE %s: %v", mailbox, err)
		}
		if sel.NumMessages == 0 {
			return nil
		}
		var all imap.SeqSet
		all.AddRange(1, sel.NumMessages)
		msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, Envelope: true, InternalDate: true}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %s: %v", mailbox, err)
		}
		return msgs
	}
	flagString := func(flags []imap.Flag) string {
		var s []string
		for _, f := range flags {
			s = append(s, string(f))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}

	sub := fetchAll("Py/Sub")
	if len(sub) != 2 {
		t.Fatalf("Py/Sub holds %d messages, want 2 (A and the one appended during IDLE)", len(sub))
	}
	if sub[0].Envelope.Subject != "plain A" || flagString(sub[0].Flags) != `$Label1 \Flagged \Seen` {
		t.Errorf("Py/Sub message 1: %q %v", sub[0].Envelope.Subject, sub[0].Flags)
	}
	if got := sub[0].InternalDate.Format("2006-01-02 15:04:05"); got != "2020-03-04 05:06:07" {
		t.Errorf("INTERNALDATE of the APPEND with a date: %s", sub[0].InternalDate)
	}
	if sub[1].Envelope.Subject != "during idle C" || len(sub[1].Flags) != 0 {
		t.Errorf("Py/Sub message 2: %q %v", sub[1].Envelope.Subject, sub[1].Flags)
	}
	// No session has selected Py/Renamed since the copy arrived: EXAMINE shows it \Recent
	// (RFC 3501 6.4.7, 6.3.2).
	renamed := fetchAll("Py/Renamed")
	if len(renamed) != 1 || renamed[0].Envelope.Subject != "plain A" || flagString(renamed[0].Flags) != `$Label1 \Flagged \Recent \Seen` {
		t.Errorf("Py/Renamed should hold the UID COPY of A with its flags: %+v", renamed)
	}
	if inbox := fetchAll("INBOX"); len(inbox) != 0 {
		t.Errorf("INBOX holds %d messages, want 0", len(inbox))
	}
}

// TestPythonImaplibTLS runs STARTTLS on the plaintext port and AUTHENTICATE PLAIN on the
// IMAPS port with Python's imaplib, verifying the certificate `strata serve` generated.
func TestPythonImaplibTLS(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required (the .ci/run script installs it): %v", err)
	}
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)
	host, port, err := net.SplitHostPort(srv.imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, imapsPort, err := net.SplitHostPort(srv.imapsAddr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/imaplib_tls.py", host, port, imapsPort,
		filepath.Join(dataDir, "tls", "cert.pem"), "demo@example.com", "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib TLS session failed: %v\n%s", err, out)
	}
	c := srv.login(t)
	data, err := c.Status("TLS", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || data.NumMessages == nil || *data.NumMessages != 1 {
		t.Fatalf("STATUS TLS after the IMAPS session: %+v, %v", data, err)
	}
}
