package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestCurlIMAP drives `strata serve` with curl's imap:// URLs (RFC 5092): LIST, CREATE,
// APPEND with -T, FETCH by UID (whole message, header fields, partial text), SEARCH,
// EXAMINE, STATUS and UID STORE as custom commands, and a UIDVALIDITY mismatch; then checks
// the result with imapclient.
func TestCurlIMAP(t *testing.T) {
	curl := requireTool(t, "curl", "curl")
	srv := startServe(t, t.TempDir())
	base := "imap://" + srv.imapAddr + "/"
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS", "--user", "demo@example.com:demo"}, args...)...).CombinedOutput()
		return string(out), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	if out := ok(base); !strings.Contains(out, `* LIST (\HasNoChildren) "/" INBOX`) || !strings.Contains(out, `\Sent`) {
		t.Errorf("LIST via curl:\n%s", out)
	}
	ok(base, "-X", `CREATE "Curl Box"`)
	msg := "From: curl@example.org\r\nSubject: via curl\r\nMessage-ID: <curl1@example.org>\r\n\r\nhello from curl\r\n"
	file := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(base+"Curl%20Box", "-T", file)
	box := base + "Curl%20Box"
	if out := ok(box + ";UID=1"); out != msg {
		t.Errorf("FETCH BODY[] via curl: %q, want %q", out, msg)
	}
	if out := ok(box + ";UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)"); out != "Subject: via curl\r\n\r\n" {
		t.Errorf("FETCH BODY[HEADER.FIELDS (SUBJECT)] via curl: %q", out)
	}
	if out := ok(box + ";UID=1/;SECTION=TEXT;PARTIAL=6.4"); out != "from" {
		t.Errorf("FETCH BODY[TEXT]<6.4> via curl: %q", out)
	}
	if out := ok(box + "?SUBJECT%20curl"); strings.TrimSpace(out) != "* SEARCH 1" {
		t.Errorf("SEARCH SUBJECT curl via curl: %q", out)
	}
	if out := ok(base, "-X", `EXAMINE "Curl Box"`); !strings.Contains(out, "* 1 EXISTS") || !strings.Contains(out, "[UIDNEXT 2]") {
		t.Errorf("EXAMINE via curl:\n%s", out)
	}
	if out := ok(base, "-X", `STATUS "Curl Box" (MESSAGES UIDNEXT)`); strings.TrimSpace(out) != `* STATUS "Curl Box" (MESSAGES 1 UIDNEXT 2)` {
		t.Errorf("STATUS via curl: %q", out)
	}
	if out := ok(box, "-X", `UID STORE 1 +FLAGS (\Flagged)`); !strings.Contains(out, `\Flagged`) {
		t.Errorf("UID STORE via curl: %q", out)
	}
	// RFC 5092 6: a URL with another UIDVALIDITY must not fetch the message.
	if out, err := run(box + ";UIDVALIDITY=1;UID=1"); err == nil {
		t.Errorf("curl fetched a message through a URL with a wrong UIDVALIDITY: %q", out)
	}

	c := srv.login(t)
	if _, err := c.Select("Curl Box", nil).Wait(); err != nil {
		t.Fatalf("SELECT Curl Box: %v", err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH UID 1: %v %v", msgs, err)
	}
	// Fetching BODY[] (not PEEK) through curl marked the message \Seen (RFC 9051 6.4.5).
	if got := fmt.Sprint(msgs[0].Flags); !hasFlag(msgs[0].Flags, imap.FlagSeen) || !hasFlag(msgs[0].Flags, imap.FlagFlagged) {
		t.Errorf("flags after curl's fetch and store: %s", got)
	}
	if msgs[0].Envelope.Subject != "via curl" {
		t.Errorf("subject %q", msgs[0].Envelope.Subject)
	}
}
