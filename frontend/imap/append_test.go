package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestMultiAppend: RFC 3502's example, two messages in one APPEND answered with one
// APPENDUID set (RFC 4315 3), with synchronising and non-synchronising literals.
func TestMultiAppend(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok("CREATE saved-messages")
	msg1 := testMessage("afternoon meeting", "Hello Joe, do you think we can meet at 3:30 tomorrow?")
	msg2 := testMessage("afternoon meeting 2", "Hello Joe, I'll bring the doughnuts.")
	rc.writeExpect(fmt.Sprintf("A003 APPEND saved-messages (\\Seen) {%d}\r\n", len(msg1)), "+ ")
	rc.writeExpect(msg1+fmt.Sprintf(` (\Seen) " 7-Feb-1994 22:43:04 -0800" {%d}`+"\r\n", len(msg2)), "+ ")
	rc.write(msg2 + "\r\n")
	_, tagged := rc.until("A003")
	var validity, first, last uint32
	if _, err := fmt.Sscanf(tagged, "OK [APPENDUID %d %d:%d]", &validity, &first, &last); err != nil || first != 1 || last != 2 {
		t.Fatalf("APPEND: %q", tagged)
	}
	// LITERAL+ (RFC 7888): three messages without continuation requests.
	rc.write(fmt.Sprintf("A004 APPEND saved-messages {%d+}\r\n%s {%d+}\r\n%s ~{%d+}\r\n%s\r\n",
		len(msg1), msg1, len(msg2), msg2, len(msg1), msg1))
	if _, tagged := rc.until("A004"); !strings.HasPrefix(tagged, fmt.Sprintf("OK [APPENDUID %d 3:5]", validity)) {
		t.Fatalf("non-synchronising MULTIAPPEND: %q", tagged)
	}
	rc.ok("SELECT saved-messages")
	got := rc.ok("FETCH 1:* (FLAGS INTERNALDATE)")
	if len(got) != 5 || !strings.Contains(got[0], `\Seen`) || !strings.Contains(got[1], `"08-Feb-1994 06:43:04 +0000"`) || strings.Contains(got[2], `\Seen`) {
		t.Errorf("FETCH = %q", got)
	}
}

// TestMultiAppendAllOrNothing: RFC 3502 6.3.11: when one message is refused, none of the
// command's messages is appended.
func TestMultiAppendAllOrNothing(t *testing.T) {
	srv := startServer(t) // APPENDLIMIT 1 MiB
	rc := loginRaw(t, srv)
	msg := testMessage("kept out", "body")
	rc.writeExpect(fmt.Sprintf("A1 APPEND INBOX {%d}\r\n", len(msg)), "+ ")
	// The second literal is too big: the server refuses it without a continuation request.
	rc.write(msg + " {2000000}\r\n")
	if _, tagged := rc.until("A1"); !strings.HasPrefix(tagged, "NO [TOOBIG]") {
		t.Fatalf("oversized second message: %q", tagged)
	}
	// A syntax error after the first message.
	rc.write(fmt.Sprintf("A2 APPEND INBOX {%d+}\r\n%s garbage\r\n", len(msg), msg))
	if _, tagged := rc.until("A2"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("garbage after a message: %q", tagged)
	}
	// A NUL in a plain literal (RFC 9051 4.3) in the second message.
	nul := "Subject: x\r\n\r\na\x00b\r\n"
	rc.write(fmt.Sprintf("A3 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n", len(msg), msg, len(nul), nul))
	if _, tagged := rc.until("A3"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("NUL in a literal: %q", tagged)
	}
	checkLines(t, "STATUS", rc.ok("STATUS INBOX (MESSAGES)"), []string{"* STATUS INBOX (MESSAGES 0)"})
	// The session goes on.
	rc.write(fmt.Sprintf("A4 APPEND INBOX ~{%d+}\r\n%s\r\n", len(nul), nul))
	if _, tagged := rc.until("A4"); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
		t.Fatalf("literal8 with NUL: %q", tagged)
	}
	rc.ok("SELECT INBOX")
	if got := rc.ok("FETCH 1 RFC822.SIZE"); !slices.Equal(got, []string{fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d)", len(nul))}) {
		t.Errorf("literal8 message stored as given: %q", got)
	}
}

// TestAppendTargets: APPEND to a missing or \Noselect mailbox answers [TRYCREATE] (RFC
// 9051 6.3.12); a rev1 session names the target in modified UTF-7.
func TestAppendTargets(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.expect("APPEND Missing {5}", "NO [TRYCREATE]")
	rc.ok("CREATE P/C")
	rc.ok("DELETE P")
	rc.expect("APPEND P {5}", "NO [TRYCREATE]")
	rc.ok(`CREATE "&AMk-t&AOk-"`)
	msg := testMessage("summer", "sun")
	rc.write(fmt.Sprintf("A1 APPEND &AMk-t&AOk- {%d+}\r\n%s\r\n", len(msg), msg))
	if _, tagged := rc.until("A1"); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND to a modified UTF-7 name: %q", tagged)
	}
	checkLines(t, "STATUS", rc.ok("STATUS &AMk-t&AOk- (MESSAGES)"), []string{"* STATUS &AMk-t&AOk- (MESSAGES 1)"})
	c := loginUTF8(t, srv)
	if data, err := c.Status("Été", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || data.Mailbox != "Été" || *data.NumMessages != 1 {
		t.Errorf("imapclient STATUS Été = %+v, %v", data, err)
	}
	rc.expect("APPEND &AGE- {5}", "NO [CANNOT]")
}

// TestAppendNonSyncRefused: with a non-synchronising literal (RFC 7888) the mailbox is
// looked up while the message is read; a refusal still reads and drops every message of
// the command, so the next command is read as a command, and nothing is stored.
func TestAppendNonSyncRefused(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	msg := testMessage("lost", "never stored")
	for _, cmd := range []string{
		"APPEND Missing " + lit(msg),
		"APPEND Missing (\\Seen) " + lit(msg) + " " + lit(msg) + " (\\Flagged) " + lit(msg), // RFC 3502
	} {
		rc.write("A1 " + cmd + "\r\n")
		if _, tagged := rc.until("A1"); !strings.HasPrefix(tagged, "NO [TRYCREATE]") {
			t.Fatalf("%q: %q, want NO [TRYCREATE]", cmd, tagged)
		}
		rc.ok("NOOP")
	}
	rc.ok("CREATE P/C")
	rc.ok("DELETE P")
	rc.write("A2 APPEND P " + lit(msg) + "\r\n")
	if _, tagged := rc.until("A2"); !strings.HasPrefix(tagged, "NO [TRYCREATE]") {
		t.Fatalf("APPEND to a \\Noselect mailbox: %q", tagged)
	}
	checkLines(t, "STATUS", rc.ok("STATUS INBOX (MESSAGES)"), []string{"* STATUS INBOX (MESSAGES 0)"})
}

// TestMultiAppendLimit: one APPEND holds at most 1000 messages; the 1001st fails the whole
// command with NO [LIMIT] (RFC 5530 3) and nothing is appended.
func TestMultiAppendLimit(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	msg := "Subject: s\r\n\r\nb\r\n"
	var sb strings.Builder
	sb.WriteString("A1 APPEND INBOX")
	for i := 0; i < 1001; i++ {
		fmt.Fprintf(&sb, " {%d+}\r\n%s", len(msg), msg)
	}
	sb.WriteString("\r\n")
	rc.write(sb.String())
	if _, tagged := rc.until("A1"); !strings.HasPrefix(tagged, "NO [LIMIT]") {
		t.Fatalf("1001 messages: %q", tagged)
	}
	checkLines(t, "STATUS", rc.ok("STATUS INBOX (MESSAGES)"), []string{"* STATUS INBOX (MESSAGES 0)"})
}

// TestAppendRemembersTarget: APPEND remembers where a name of the account's own mailboxes
// led and sends the next APPEND by that name there without a lookup; whatever another
// session does to the mailbox in between (RENAME, a new mailbox by the old name, DELETE)
// the APPEND lands or fails as one with a lookup would.
func TestAppendRemembersTarget(t *testing.T) {
	srv := startServer(t)
	a, b := loginRaw(t, srv), loginRaw(t, srv)
	msg := testMessage("remembered", "body")
	appendTo := func(name, want string) {
		t.Helper()
		a.write("A1 APPEND " + name + " " + lit(msg) + "\r\n")
		if _, tagged := a.until("A1"); !strings.HasPrefix(tagged, want) {
			t.Fatalf("APPEND %s: %q, want %s", name, tagged, want)
		}
	}
	messages := func(name string, want int) {
		t.Helper()
		checkLines(t, "STATUS "+name, b.ok("STATUS "+name+" (MESSAGES)"), []string{fmt.Sprintf("* STATUS %s (MESSAGES %d)", name, want)})
	}
	a.ok("CREATE Work")
	for range 2 {
		appendTo("Work", "OK [APPENDUID ")
	}
	messages("Work", 2)

	// Renamed, and a new mailbox by the old name: the APPEND goes to the new one.
	b.ok("RENAME Work Old")
	b.ok("CREATE Work")
	appendTo("Work", "OK [APPENDUID ")
	messages("Work", 1)
	messages("Old", 2)

	// Deleted: TRYCREATE, as without a remembered mailbox.
	b.ok("DELETE Work")
	appendTo("Work", "NO [TRYCREATE]")
	messages("Old", 2)

	// Renamed away with nothing by the old name: TRYCREATE, and nothing lands in the
	// renamed mailbox.
	appendTo("Old", "OK [APPENDUID ")
	b.ok("RENAME Old Older")
	appendTo("Old", "NO [TRYCREATE]")
	messages("Older", 3)

	// A synchronising literal to a remembered mailbox.
	appendTo("Older", "OK [APPENDUID ")
	a.write(fmt.Sprintf("A2 APPEND Older {%d}\r\n", len(msg)))
	if line := a.readLine(); !strings.HasPrefix(line, "+") {
		t.Fatalf("continuation: %q", line)
	}
	a.write(msg + "\r\n")
	if _, tagged := a.until("A2"); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND Older with a synchronising literal: %q", tagged)
	}
	messages("Older", 5)

	// The owner keeps every right on its mailboxes, so no ACL change makes a remembered
	// target wrong.
	b.expect("SETACL Older demo@example.com lrswtexka", "NO [CANNOT]")
}
