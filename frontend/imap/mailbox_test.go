package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestListCreateDeleteRename runs in IMAP4rev2 only: imapclient sends UTF-8 names to any
// server that announces IMAP4rev2, enabled or not, and an IMAP4rev1 session refuses them
// (mailboxname.go); TestListRaw and utf8_test.go cover IMAP4rev1 names.
func TestListCreateDeleteRename(t *testing.T) {
	srv := startServer(t)
	c := loginUTF8(t, srv)
	for _, name := range []string{"Work", "Work/Projects", "Work/Projects/Strata", "Ünïcode"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	if err := c.Create("Work", nil).Wait(); !hasCode(err, imap.ResponseCodeAlreadyExists) {
		t.Errorf("CREATE of an existing mailbox: %v", err)
	}

	list := func(ref, pattern string) map[string][]imap.MailboxAttr {
		t.Helper()
		boxes, err := c.List(ref, pattern, nil).Collect()
		if err != nil {
			t.Fatalf("LIST %q %q: %v", ref, pattern, err)
		}
		got := map[string][]imap.MailboxAttr{}
		for _, b := range boxes {
			if b.Delim != '/' {
				t.Errorf("delimiter %q", b.Delim)
			}
			got[b.Mailbox] = b.Attrs
		}
		return got
	}
	all := list("", "*")
	for _, name := range []string{"INBOX", "Work", "Work/Projects", "Work/Projects/Strata", "Ünïcode"} {
		if _, ok := all[name]; !ok {
			t.Errorf("LIST * lacks %q: %v", name, all)
		}
	}
	if !slices.Contains(all["Work"], imap.MailboxAttrHasChildren) || !slices.Contains(all["Work/Projects/Strata"], imap.MailboxAttrHasNoChildren) {
		t.Errorf("children attributes wrong: %v", all)
	}
	top := list("", "%")
	if _, ok := top["Work/Projects"]; ok || top["Work"] == nil || top["INBOX"] == nil || !slices.Contains(top["Sent"], imap.MailboxAttrSent) {
		t.Errorf("LIST %% = %v, want the top level with special-use attributes", top)
	}
	if sub := list("Work/", "%"); len(sub) != 1 || sub["Work/Projects"] == nil {
		t.Errorf("LIST Work/ %% = %v", sub)
	}
	if inbox := list("", "inbox"); len(inbox) != 1 || inbox["INBOX"] == nil {
		t.Errorf("LIST inbox = %v", inbox)
	}

	if err := c.Rename("Work/Projects/Strata", "Old", nil).Wait(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if err := c.Delete("Ünïcode").Wait(); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	all = list("", "*")
	if _, ok := all["Old"]; !ok {
		t.Errorf("renamed mailbox missing: %v", all)
	}
	if _, ok := all["Ünïcode"]; ok {
		t.Errorf("deleted mailbox listed: %v", all)
	}
	if err := c.Delete("Nope").Wait(); !hasCode(err, imap.ResponseCodeNonExistent) {
		t.Errorf("DELETE of a missing mailbox: %v", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}
	if _, err := c.Select("Nope", nil).Wait(); !hasCode(err, imap.ResponseCodeNonExistent) {
		t.Errorf("SELECT of a missing mailbox: %v", err)
	}
}

func TestListRaw(t *testing.T) { bothModes(t, testListRaw) }

func testListRaw(t *testing.T, rev2 bool) {
	srv := startServer(t)
	rc := loginRawMode(t, srv, rev2)
	if got := rc.ok(`LIST "" ""`); len(got) != 1 || got[0] != `* LIST (\Noselect) "/" ""` {
		t.Errorf(`LIST "" "" = %q`, got)
	}
	rc.ok("CREATE a/b/c")
	got := rc.ok(`LIST "" a/%`)
	if len(got) != 1 || !strings.HasPrefix(got[0], `* LIST (`) || !strings.Contains(got[0], `\HasChildren`) || !strings.HasSuffix(got[0], `"/" a/b`) {
		t.Errorf(`LIST "" a/%% = %q`, got)
	}
	rc.ok("SUBSCRIBE a/b/c")
	if got := rc.ok(`LSUB "" a/*`); len(got) != 1 || !strings.HasSuffix(got[0], `"/" a/b/c`) {
		t.Errorf("LSUB = %q", got)
	}
	if got := rc.ok(`LIST (SUBSCRIBED) "" a*`); len(got) != 1 || !strings.Contains(got[0], `\Subscribed`) {
		t.Errorf("LIST (SUBSCRIBED) = %q", got)
	}
	rc.ok("UNSUBSCRIBE a/b/c")
	if got := rc.ok(`LSUB "" a/*`); len(got) != 0 {
		t.Errorf("LSUB after UNSUBSCRIBE = %q", got)
	}
	rc.expect(`LIST "" * RETURN (STATUS (BOGUS))`, "BAD")
	rc.expect(`LIST (RECURSIVEMATCH) "" *`, "BAD") // RFC 5258 3.1
}

func TestStatus(t *testing.T) { bothModes(t, testStatus) }

func testStatus(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginMode(t, srv, rev2)
	appendMessage(t, c, "INBOX", testMessage("one", "first"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("two", "second"))
	data, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *data.NumMessages != 2 || *data.NumUnseen != 1 || data.UIDNext != 3 || data.UIDValidity == 0 || *data.Size == 0 {
		t.Errorf("STATUS = messages %d unseen %d uidnext %d uidvalidity %d size %d",
			*data.NumMessages, *data.NumUnseen, data.UIDNext, data.UIDValidity, *data.Size)
	}
	rc := loginRawMode(t, srv, rev2)
	got := rc.ok("STATUS inbox (MESSAGES DELETED)")
	if len(got) != 1 || got[0] != "* STATUS INBOX (MESSAGES 2 DELETED 0)" {
		t.Errorf("STATUS = %q", got)
	}
	rc.expect("STATUS nope (MESSAGES)", "NO [NONEXISTENT]")
	rc.expect("STATUS INBOX (BOGUS)", "BAD")
	// HIGHESTMODSEQ (RFC 7162 3.1.7) is in condstore_test.go.
	got = rc.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT APPENDLIMIT)")
	want := fmt.Sprintf("* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 1 DELETED 0 SIZE %d RECENT ", data.UIDValidity, *data.Size)
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.HasSuffix(got[0], " APPENDLIMIT 1048576)") {
		t.Errorf("STATUS with every item = %q, want %q...", got, want)
	}
	rc.ok("CREATE P/C")
	rc.ok("DELETE P")
	rc.expect("STATUS P (MESSAGES)", "NO [NONEXISTENT]")
}

// TestStatusDeletedStorage: RFC 9208 4.1.4's DELETED-STORAGE, the space an EXPUNGE would
// free in units of 1024 octets (as the STORAGE resource counts), beside DELETED.
func TestStatusDeletedStorage(t *testing.T) { bothModes(t, testStatusDeletedStorage) }

func testStatusDeletedStorage(t *testing.T, rev2 bool) {
	srv := startServer(t)
	rc := loginRawMode(t, srv, rev2)
	big := testMessage("big", strings.Repeat("x", 3000))
	small := testMessage("small", "tiny")
	for _, msg := range []string{big, small, big} {
		if tagged := rc.rawAppend("INBOX", msg); !strings.HasPrefix(tagged, "OK") {
			t.Fatalf("APPEND: %s", tagged)
		}
	}
	want := []string{"* STATUS INBOX (DELETED 0 DELETED-STORAGE 0)"}
	if got := rc.ok("STATUS INBOX (DELETED DELETED-STORAGE)"); !slices.Equal(got, want) {
		t.Errorf("STATUS = %q, want %q", got, want)
	}
	rc.ok("SELECT INBOX")
	rc.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	kib := (len(big) + len(small) + 1023) / 1024
	want = []string{fmt.Sprintf("* STATUS INBOX (DELETED-STORAGE %d DELETED 2 MESSAGES 3)", kib)}
	if got := rc.ok("STATUS INBOX (DELETED-STORAGE DELETED MESSAGES)"); !slices.Equal(got, want) {
		t.Errorf("STATUS = %q, want %q", got, want)
	}
	want = []string{"* STATUS INBOX (MESSAGES 1 DELETED-STORAGE 0)"}
	rc.ok("EXPUNGE")
	if got := rc.ok("STATUS INBOX (MESSAGES DELETED-STORAGE)"); !slices.Equal(got, want) {
		t.Errorf("STATUS after EXPUNGE = %q, want %q", got, want)
	}
}

// hasCode reports whether err is an IMAP status response with code.
func hasCode(err error, code imap.ResponseCode) bool {
	imapErr, ok := err.(*imap.Error)
	return ok && imapErr.Code == code
}
