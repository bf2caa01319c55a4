package imap_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The object ids of RFC 8474 in responses: "(" objectid ")" (RFC 8474 7).
var (
	createdMailboxID = regexp.MustCompile(`^OK \[MAILBOXID \((F[0-9a-f]{24})\)\] `)
	fetchEmailID     = regexp.MustCompile(`EMAILID \((M[0-9a-f]{64})\)`)
	fetchThreadID    = regexp.MustCompile(`THREADID \((T[0-9a-f]{16})\)`)
)

// create creates a mailbox and returns the MAILBOXID of the tagged OK (RFC 8474 4.1).
func (rc *rawConn) create(name string) string {
	rc.t.Helper()
	_, tagged := rc.cmd("CREATE " + name)
	m := createdMailboxID.FindStringSubmatch(tagged)
	if m == nil {
		rc.t.Fatalf("CREATE %s: %q, want OK [MAILBOXID (...)]", name, tagged)
	}
	return m[1]
}

// mailboxID returns the MAILBOXID STATUS reports (RFC 8474 4.3).
func (rc *rawConn) mailboxID(name string) string {
	rc.t.Helper()
	got := rc.ok("STATUS " + name + " (MAILBOXID)")
	prefix := "* STATUS " + name + " (MAILBOXID ("
	if len(got) != 1 || !strings.HasPrefix(got[0], prefix) || !strings.HasSuffix(got[0], "))") {
		rc.t.Fatalf("STATUS %s (MAILBOXID) = %q", name, got)
	}
	return strings.TrimSuffix(strings.TrimPrefix(got[0], prefix), "))")
}

// objectIDs returns the EMAILID and THREADID of every message of the selected mailbox, in
// sequence order (RFC 8474 5.3).
func (rc *rawConn) objectIDs() (emails, threads []string) {
	rc.t.Helper()
	for _, l := range rc.ok("FETCH 1:* (EMAILID THREADID)") {
		if !strings.Contains(l, " FETCH (") {
			continue // EXISTS of a message another session appended
		}
		e, th := fetchEmailID.FindStringSubmatch(l), fetchThreadID.FindStringSubmatch(l)
		if e == nil || th == nil {
			rc.t.Fatalf("FETCH (EMAILID THREADID): %q", l)
		}
		emails, threads = append(emails, e[1]), append(threads, th[1])
	}
	return emails, threads
}

// search returns the result of a SEARCH as its "* SEARCH" line.
func (rc *rawConn) search(criteria string) string {
	rc.t.Helper()
	got := rc.ok("SEARCH " + criteria)
	if len(got) != 1 {
		rc.t.Fatalf("SEARCH %s = %q", criteria, got)
	}
	return got[0]
}

// threadMessage returns a message with Message-ID id (none if empty), subject and the
// extra header lines.
func threadMessage(id, subject string, extra ...string) string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.org>\r\nTo: Demo <demo@example.com>\r\n")
	b.WriteString("Subject: " + subject + "\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n")
	if id != "" {
		b.WriteString("Message-ID: <" + id + ">\r\n")
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + subject + " " + id + "\r\n")
	return b.String()
}

// TestMailboxID: RFC 8474 4. CREATE, SELECT, EXAMINE, STATUS and LIST-STATUS show the
// MAILBOXID; RENAME keeps it; a deleted and recreated name gets a new one.
func TestMailboxID(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " OBJECTID") {
		t.Fatalf("CAPABILITY = %q", caps)
	}
	id := rc.create("Projects")
	if got := rc.mailboxID("Projects"); got != id {
		t.Errorf("STATUS MAILBOXID = %q, CREATE said %q", got, id)
	}
	inbox := rc.mailboxID("INBOX")
	if inbox == id {
		t.Errorf("INBOX and Projects share MAILBOXID %q", id)
	}
	for _, cmd := range []string{"SELECT Projects", "EXAMINE Projects"} {
		if got := rc.ok(cmd); !slices.Contains(got, "* OK [MAILBOXID ("+id+")] Ok") {
			t.Errorf("%s = %q", cmd, got)
		}
	}
	rc.ok("UNSELECT")
	got := rc.ok(`LIST "" "*" RETURN (STATUS (MAILBOXID MESSAGES))`)
	if !slices.Contains(got, "* STATUS Projects (MAILBOXID ("+id+") MESSAGES 0)") ||
		!slices.Contains(got, "* STATUS INBOX (MAILBOXID ("+inbox+") MESSAGES 0)") {
		t.Errorf("LIST RETURN (STATUS (MAILBOXID MESSAGES)) = %q", got)
	}

	// RENAME keeps it, for the mailbox and its inferiors.
	child := rc.create("Projects/2026")
	rc.ok("RENAME Projects Work")
	if got := rc.mailboxID("Work"); got != id {
		t.Errorf("MAILBOXID after RENAME = %q, want %q", got, id)
	}
	if got := rc.mailboxID("Work/2026"); got != child {
		t.Errorf("MAILBOXID of a renamed inferior = %q, want %q", got, child)
	}
	// A new mailbox under an old name is a new mailbox.
	rc.ok("DELETE Work/2026")
	if again := rc.create("Work/2026"); again == child || again == id {
		t.Errorf("recreated mailbox has MAILBOXID %q again", again)
	}
	rc.ok("CREATE Solo")
	solo := rc.mailboxID("Solo")
	rc.ok("DELETE Solo")
	if again := rc.create("Solo"); again == solo {
		t.Errorf("recreated Solo has MAILBOXID %q again", again)
	}
	// Another session sees the same ids.
	if got := loginRaw(t, srv).mailboxID("Work"); got != id {
		t.Errorf("MAILBOXID in another session = %q, want %q", got, id)
	}
}

// TestEmailID: RFC 8474 5.1. COPY and MOVE keep the EMAILID (and the THREADID); other
// content has another; SEARCH EMAILID finds the copies (RFC 8474 6).
func TestEmailID(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("first", "one"))
	appendMessage(t, c, "INBOX", testMessage("second", "two"))
	rc := loginRaw(t, srv)
	rc.ok("CREATE Dest")
	rc.ok("SELECT INBOX")
	emails, threads := rc.objectIDs()
	if len(emails) != 2 || emails[0] == emails[1] || threads[0] == threads[1] {
		t.Fatalf("EMAILIDs %q THREADIDs %q", emails, threads)
	}
	rc.ok("COPY 1 Dest")
	rc.ok("COPY 1 INBOX")
	rc.ok("MOVE 2 Dest")
	if got := rc.search("EMAILID " + emails[0]); got != "* SEARCH 1 2" {
		t.Errorf("SEARCH EMAILID in INBOX = %q", got)
	}
	rc.ok("SELECT Dest")
	gotEmails, gotThreads := rc.objectIDs()
	if !slices.Equal(gotEmails, emails) || !slices.Equal(gotThreads, threads) {
		t.Errorf("after COPY and MOVE: EMAILIDs %q THREADIDs %q, want %q %q", gotEmails, gotThreads, emails, threads)
	}
	if got := rc.search("EMAILID " + emails[1]); got != "* SEARCH 2" {
		t.Errorf("SEARCH EMAILID = %q", got)
	}
	if got := rc.search("NOT EMAILID " + emails[1]); got != "* SEARCH 1" {
		t.Errorf("SEARCH NOT EMAILID = %q", got)
	}
	if got := rc.search("EMAILID Mnothing"); got != "* SEARCH" {
		t.Errorf("SEARCH EMAILID of no message = %q", got)
	}
	rc.expect("SEARCH EMAILID (x)", "BAD")
	if got := rc.ok("UID FETCH 2 EMAILID"); len(got) != 1 || !strings.HasSuffix(got[0], "(UID 2 EMAILID ("+emails[1]+"))") {
		t.Errorf("UID FETCH EMAILID = %q", got)
	}
}

// TestThreadID: RFC 8474 5.2. A reply (In-Reply-To) and a References chain share the
// original's THREADID, also when the reply comes first; unrelated mail has another; COPY,
// MOVE and RENAME keep it; SEARCH THREADID finds the thread (RFC 8474 6).
func TestThreadID(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for _, msg := range []string{
		threadMessage("root@x", "Plans"),
		threadMessage("reply@x", "Re: Plans", "In-Reply-To: <root@x>"),
		threadMessage("chain@x", "Re: Plans", "In-Reply-To: <reply@x>", "References: <root@x>\r\n <reply@x>"),
		threadMessage("lunch@x", "Lunch"),
		threadMessage("early@x", "Re: Report", "In-Reply-To: <late@x>", "References: <late@x>"),
		threadMessage("late@x", "Report"),
		threadMessage("", "Re: Plans"),
		threadMessage("other@x", "Plans"),
	} {
		appendMessage(t, c, "INBOX", msg)
	}
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	_, threads := rc.objectIDs()
	plans := threads[0]
	if threads[1] != plans || threads[2] != plans {
		t.Errorf("reply and References chain: THREADIDs %q, want all %q", threads[:3], plans)
	}
	if threads[3] == plans || threads[4] == plans || threads[7] == plans {
		t.Errorf("unrelated messages joined the thread: %q", threads)
	}
	if threads[5] != threads[4] {
		t.Errorf("an original that came after its reply has THREADID %q, the reply %q", threads[5], threads[4])
	}
	// "Re: Plans" without references joins the thread of its subject; "Plans" again,
	// not a reply, starts its own.
	if threads[6] != plans {
		t.Errorf("a reply without references: THREADID %q, want %q", threads[6], plans)
	}
	if got := rc.search("THREADID " + plans); got != "* SEARCH 1 2 3 7" {
		t.Errorf("SEARCH THREADID = %q", got)
	}
	if got := rc.search("OR THREADID " + threads[3] + " THREADID " + threads[4]); got != "* SEARCH 4 5 6" {
		t.Errorf("SEARCH OR THREADID = %q", got)
	}

	rc.ok("CREATE Kept")
	rc.ok("COPY 1 Kept")
	rc.ok("MOVE 2:3 Kept")
	rc.ok("RENAME Kept Old")
	rc.ok("SELECT Old")
	if _, got := rc.objectIDs(); !slices.Equal(got, []string{plans, plans, plans}) {
		t.Errorf("after COPY, MOVE and RENAME: THREADIDs %q, want %q", got, plans)
	}
	if got := rc.ok("UID SEARCH THREADID " + plans); !slices.Equal(got, []string{"* SEARCH 1 2 3"}) {
		t.Errorf("UID SEARCH THREADID in Old = %q", got)
	}
	// A reply that arrives later, in another mailbox, joins too. Appended by this session to
	// its selected mailbox, it is announced (EXISTS) with the APPEND's response.
	msg := threadMessage("late-reply@x", "Re: Plans", "References: <root@x> <chain@x>")
	rc.ok(fmt.Sprintf("APPEND Old {%d+}\r\n%s", len(msg), msg))
	if _, got := rc.objectIDs(); len(got) != 4 || got[3] != plans {
		t.Errorf("a later reply: THREADIDs %q", got)
	}
	if got := fmt.Sprint(rc.ok("FETCH 4 (THREADID)")); !strings.Contains(got, "THREADID ("+plans+")") {
		t.Errorf("FETCH THREADID = %s", got)
	}
}
