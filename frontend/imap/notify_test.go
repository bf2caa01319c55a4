package imap_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifyAllEvents are the events Strata supports, as BADEVENT lists them (RFC 5465 3.1).
const notifyAllEvents = "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)"

// appendRaw appends a small message to mailbox through rc.
func appendRaw(rc *rawConn, mailbox, subject string, flags string) {
	rc.t.Helper()
	msg := testMessage(subject, "body of "+subject)
	rc.ok("APPEND " + mailbox + " (" + flags + ") {" + strconv.Itoa(len(msg)) + "+}\r\n" + msg)
}

// watcherAndOther starts a server and logs in to the demo account twice: a session that
// watches for notifications and one whose changes bring them.
func watcherAndOther(t *testing.T) (watcher, other *rawConn) {
	t.Helper()
	srv := startServer(t)
	return loginRaw(t, srv), loginRaw(t, srv)
}

// statusRE matches the STATUS of a NOTIFY event without CONDSTORE (RFC 5465 5.2).
func statusLine(mailbox string, messages, uidNext, unseen int) *regexp.Regexp {
	return regexp.MustCompile(`^\* STATUS ` + regexp.QuoteMeta(mailbox) + ` \(MESSAGES ` + strconv.Itoa(messages) +
		` UIDNEXT ` + strconv.Itoa(uidNext) + ` UIDVALIDITY \d+ UNSEEN ` + strconv.Itoa(unseen) + `\)$`)
}

// TestNotifyStatusOtherMailboxes: NOTIFY SET STATUS answers a STATUS for each mailbox with
// message events before its OK (RFC 5465 3.1); mail that a second session appends to
// another mailbox brings a STATUS while the client sends nothing (RFC 5465 5.2), only for the
// mailboxes the groups cover (SUBSCRIBED, RFC 5465 6.4); flag changes bring one only with
// FlagChange (5.1).
func TestNotifyStatusOtherMailboxes(t *testing.T) {
	watcher, other := watcherAndOther(t)
	other.ok("CREATE Private") // not subscribed

	got := watcher.ok("NOTIFY SET STATUS (subscribed (MessageNew MessageExpunge))")
	for _, name := range []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"} {
		if !slices.ContainsFunc(got, statusLine(name, 0, 1, 0).MatchString) {
			t.Errorf("NOTIFY SET STATUS: no STATUS of %s in %q", name, got)
		}
	}
	if contains(got, "Private") {
		t.Errorf("NOTIFY SET STATUS reported an unsubscribed mailbox: %q", got)
	}

	appendRaw(other, "Private", "hidden", "")
	appendRaw(other, "Archive", "first", "")
	if l := watcher.readLine(); !statusLine("Archive", 1, 2, 0+1).MatchString(l) {
		t.Fatalf("after an APPEND to Archive by another session: %q", l)
	}
	// A flag change is not MessageNew or MessageExpunge: nothing.
	other.ok("SELECT Archive")
	other.ok("STORE 1 +FLAGS (\\Seen)")
	other.ok("STORE 1 +FLAGS (\\Deleted)")
	other.ok("EXPUNGE")
	if l := watcher.readLine(); !statusLine("Archive", 0, 2, 0).MatchString(l) {
		t.Fatalf("after an EXPUNGE in Archive: %q", l)
	}
	watcher.silent(300 * time.Millisecond)
	// The session's own APPEND brings no STATUS (RFC 5465 5: SHOULD omit).
	msg := testMessage("mine", "my own")
	if got := watcher.ok("APPEND Junk {" + strconv.Itoa(len(msg)) + "+}\r\n" + msg); contains(got, "STATUS") {
		t.Fatalf("own APPEND: %q", got)
	}
	watcher.silent(300 * time.Millisecond)

	// FlagChange: a STATUS for a flag change too (RFC 5465 5.1); with CONDSTORE, with
	// HIGHESTMODSEQ (5.2).
	watcher.ok("ENABLE CONDSTORE")
	watcher.ok("NOTIFY SET (mailboxes Archive (MessageNew MessageExpunge FlagChange))")
	appendRaw(other, "Archive", "second", "")
	if l := watcher.readLine(); !regexp.MustCompile(`^\* STATUS Archive \(MESSAGES 1 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+\)$`).MatchString(l) {
		t.Fatalf("after an APPEND with CONDSTORE: %q", l)
	}
	other.ok("NOOP")
	other.ok("STORE 1 +FLAGS (\\Seen)")
	if l := watcher.readLine(); !strings.HasPrefix(l, "* STATUS Archive (MESSAGES 1 UIDNEXT 3 ") || !strings.Contains(l, "UNSEEN 0") {
		t.Fatalf("after a flag change with FlagChange: %q", l)
	}
}

// TestNotifySelected: with SELECTED, a new message in the selected mailbox is announced
// between commands by EXISTS and the FETCH of MessageNew's attributes (RFC 5465 5.2), a flag
// change by FETCH with UID and FLAGS (5.1), an expunge by EXPUNGE (5.3); other mailboxes send
// STATUS, never the selected one.
func TestNotifySelected(t *testing.T) {
	watcher, other := watcherAndOther(t)
	watcher.ok("ENABLE IMAP4rev2") // no RECENT (RFC 9051 appendix E)
	watcher.ok("SELECT INBOX")
	watcher.ok("NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge))")

	appendRaw(other, "INBOX", "hello", "")
	if got := watcher.waitFor("FETCH"); got[0] != "* 1 EXISTS" || !strings.HasPrefix(got[len(got)-1], "* 1 FETCH (UID 1 FLAGS () BODY[HEADER.FIELDS (Subject)] {") ||
		!strings.Contains(got[len(got)-1], "Subject: hello") {
		t.Fatalf("after an APPEND to the selected mailbox: %q", got)
	}
	other.ok("SELECT INBOX")
	other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
	if l := watcher.readLine(); l != `* 1 FETCH (UID 1 FLAGS (\Flagged))` {
		t.Fatalf("after a flag change: %q", l)
	}
	other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	watcher.readLine()
	other.ok("EXPUNGE")
	if l := watcher.readLine(); l != "* 1 EXPUNGE" {
		t.Fatalf("after an expunge: %q", l)
	}
	appendRaw(other, "Sent", "sent", "\\Seen")
	if l := watcher.readLine(); !statusLine("Sent", 1, 2, 0).MatchString(l) {
		t.Fatalf("after an APPEND to another mailbox: %q", l)
	}
	watcher.silent(300 * time.Millisecond)
	watcher.ok("NOOP")
}

// TestNotifySelectedDelayed: SELECTED-DELAYED announces new messages at once but holds
// expunges until a command that may carry them (RFC 5465 6.1.2); FETCH, STORE and SEARCH
// never do (RFC 9051 7.5.1).
func TestNotifySelectedDelayed(t *testing.T) {
	watcher, other := watcherAndOther(t)
	appendRaw(other, "INBOX", "one", "")
	appendRaw(other, "INBOX", "two", "")
	watcher.ok("ENABLE IMAP4rev2")
	watcher.ok("SELECT INBOX")
	watcher.ok("NOTIFY SET (selected-delayed (MessageNew MessageExpunge))")

	other.ok("SELECT INBOX")
	other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	other.ok("EXPUNGE")
	appendRaw(other, "INBOX", "three", "")
	if l := watcher.readLine(); l != "* 3 EXISTS" {
		t.Fatalf("after an expunge and an APPEND: %q, want 3 EXISTS and no EXPUNGE yet", l)
	}
	watcher.silent(300 * time.Millisecond)
	if got := watcher.ok("FETCH 1 (UID)"); contains(got, "EXPUNGE") {
		t.Fatalf("FETCH carried an EXPUNGE: %q", got)
	}
	if got := watcher.ok("NOOP"); !slices.Equal(got, []string{"* 1 EXPUNGE"}) {
		t.Fatalf("NOOP after the held expunge: %q", got)
	}
}

// TestNotifyMailboxNames: MailboxName sends LIST for a mailbox created, renamed (with
// OLDNAME) and deleted (\NonExistent) by another session (RFC 5465 5.4), SubscriptionChange a
// LIST with or without \Subscribed (5.5).
func TestNotifyMailboxNames(t *testing.T) {
	watcher, other := watcherAndOther(t)
	watcher.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))")
	for _, step := range []struct{ command, want string }{
		{"CREATE Projects", `* LIST (\HasNoChildren) "/" Projects`},
		{"CREATE Projects/2026", `* LIST (\HasNoChildren) "/" Projects/2026`},
		{"RENAME Projects/2026 Projects/Done", `* LIST (\HasNoChildren) "/" Projects/Done ("OLDNAME" (Projects/2026))`},
		{"SUBSCRIBE Projects", `* LIST (\Subscribed \HasChildren) "/" Projects`},
		{"UNSUBSCRIBE Projects", `* LIST (\HasChildren) "/" Projects`},
		{"DELETE Projects/Done", `* LIST (\NonExistent) "/" Projects/Done`},
	} {
		other.ok(step.command)
		if l := watcher.readLine(); l != step.want {
			t.Fatalf("after %s: %q, want %q", step.command, l, step.want)
		}
	}
	watcher.silent(300 * time.Millisecond)
}

// TestNotifyOwnNameChanges: the session's own CREATE, RENAME, SUBSCRIBE, UNSUBSCRIBE and
// DELETE bring it no LIST (RFC 5465 5: events the client caused SHOULD be omitted); another
// session's do.
func TestNotifyOwnNameChanges(t *testing.T) {
	watcher, other := watcherAndOther(t)
	watcher.ok("NOTIFY SET (personal (MailboxName SubscriptionChange))")
	for _, cmd := range []string{"CREATE Mine", "CREATE Mine/Sub", "RENAME Mine Ours", "SUBSCRIBE Ours", "UNSUBSCRIBE Ours", "DELETE Ours/Sub"} {
		if got := watcher.ok(cmd); len(got) != 0 {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	watcher.silent(500 * time.Millisecond)
	if got := watcher.ok("NOOP"); len(got) != 0 {
		t.Fatalf("NOOP after the session's own changes: %q", got)
	}
	other.ok("CREATE Theirs")
	if l := watcher.readLine(); l != `* LIST (\HasNoChildren) "/" Theirs` {
		t.Fatalf("another session's CREATE: %q", l)
	}
}

// TestNotifyNone: NOTIFY NONE stops the notifications (RFC 5465 3.1).
func TestNotifyNone(t *testing.T) {
	watcher, other := watcherAndOther(t)
	watcher.ok("NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))")
	other.ok("CREATE Gone")
	watcher.waitFor(`"/" Gone`)
	watcher.ok("NOTIFY NONE")
	other.ok("CREATE Quiet")
	appendRaw(other, "INBOX", "unheard", "")
	watcher.silent(500 * time.Millisecond)
	if got := watcher.ok("NOOP"); len(got) != 0 {
		t.Fatalf("NOOP after NOTIFY NONE: %q", got)
	}
}

// TestNotifyRefused: events Strata does not send are refused with NO [BADEVENT] listing the
// ones it does (RFC 5465 3.1); the rules of sections 5 and 6.1 with BAD.
func TestNotifyRefused(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	for _, tc := range []struct{ command, want string }{
		{"NOTIFY SET (personal (MailboxMetadataChange))", "NO [" + notifyAllEvents + "]"},
		{"NOTIFY SET (personal (ServerMetadataChange))", "NO [" + notifyAllEvents + "]"},
		{"NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))", "NO [" + notifyAllEvents + "]"},
		{"NOTIFY SET (inboxes (MessageNew MessageExpunge X-Other))", "NO [" + notifyAllEvents + "]"},
		{"NOTIFY SET (selected (MailboxName))", "BAD"},
		{"NOTIFY SET (personal (MessageNew))", "BAD"},
		{"NOTIFY SET (personal (FlagChange))", "BAD"},
		{"NOTIFY SET (selected NONE) (selected-delayed NONE)", "BAD"},
	} {
		rc.expect(tc.command, tc.want)
	}
	rc.ok("NOTIFY NONE")
	rc.ok("NOTIFY SET (inboxes NONE)")
	// Names in other namespaces are ignored (RFC 5465 6.6), not refused.
	rc.ok(`NOTIFY SET (mailboxes ("Other Users/alice@example.com/INBOX" Shared/Support) (MessageNew MessageExpunge))`)
	if got := rc.ok("CAPABILITY"); !contains(got, " NOTIFY") {
		t.Fatalf("CAPABILITY: %q", got)
	}
}

// TestNotifyIdle: in IDLE a NOTIFY session gets what NOTIFY asks for (RFC 5465 4): the
// STATUS of INBOX while another mailbox is selected.
func TestNotifyIdle(t *testing.T) {
	watcher, other := watcherAndOther(t)
	watcher.ok("SELECT Drafts")
	watcher.ok("NOTIFY SET (selected (MessageNew MessageExpunge)) (inboxes (MessageNew MessageExpunge))")
	watcher.startIdle("i1")
	appendRaw(other, "INBOX", "to the inbox", "")
	if l := watcher.readLine(); !statusLine("INBOX", 1, 2, 1).MatchString(l) {
		t.Fatalf("in IDLE, after an APPEND to INBOX: %q", l)
	}
	appendRaw(other, "Drafts", "draft", "\\Draft")
	if l := watcher.readLine(); l != "* 1 EXISTS" {
		t.Fatalf("in IDLE, after an APPEND to the selected mailbox: %q", l)
	}
	watcher.write("DONE\r\n")
	if _, tagged := watcher.until("i1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("IDLE: %s", tagged)
	}
}
