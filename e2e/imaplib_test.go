package e2e

import (
	"net"
	"os/exec"
	"testing"

	"github.com/emersion/go-imap/v2"
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
