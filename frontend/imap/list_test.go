package imap_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// setupFruit builds the hierarchy of RFC 5258 5's examples: Fruit/Apple, Fruit/Banana,
// Vegetable/Broccoli, Vegetable/Corn, with Fruit/Banana, Fruit/Peach (which does not
// exist), Vegetable and Vegetable/Broccoli subscribed.
func setupFruit(rc *rawConn) {
	for _, name := range []string{"Fruit/Apple", "Fruit/Banana", "Vegetable/Broccoli", "Vegetable/Corn"} {
		rc.ok("CREATE " + name)
	}
	for _, name := range []string{"Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"} {
		rc.ok("SUBSCRIBE " + name)
	}
}

func checkLines(t *testing.T, cmd string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", cmd, got, want)
	}
}

// TestListExtendedRFC5258 runs the RFC 5258 5 examples over this hierarchy.
func TestListExtendedRFC5258(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	setupFruit(rc)
	run := func(cmd string, want ...string) {
		t.Helper()
		checkLines(t, cmd, rc.ok(cmd), want)
	}
	// Example 2/3: SUBSCRIBED lists subscribed names, existing or not (RFC 5258 3.1).
	run(`LIST (SUBSCRIBED) "" ("Fruit*" "Vegetable*")`,
		`* LIST (\Subscribed \HasNoChildren) "/" Fruit/Banana`,
		`* LIST (\NonExistent \Subscribed) "/" Fruit/Peach`,
		`* LIST (\Subscribed \HasChildren) "/" Vegetable`,
		`* LIST (\Subscribed \HasNoChildren) "/" Vegetable/Broccoli`)
	// RETURN (SUBSCRIBED) marks subscriptions among all mailboxes (RFC 5258 3.2).
	run(`LIST "" "Fruit/*" RETURN (SUBSCRIBED)`,
		`* LIST (\HasNoChildren) "/" Fruit/Apple`,
		`* LIST (\Subscribed \HasNoChildren) "/" Fruit/Banana`)
	// RETURN (CHILDREN) with % (RFC 5258 4).
	run(`LIST "" "%" RETURN (CHILDREN)`,
		`* LIST (\Archive \HasNoChildren) "/" Archive`,
		`* LIST (\Drafts \HasNoChildren) "/" Drafts`,
		`* LIST (\HasChildren) "/" Fruit`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\Junk \HasNoChildren) "/" Junk`,
		`* LIST (\Sent \HasNoChildren) "/" Sent`,
		`* LIST (\Trash \HasNoChildren) "/" Trash`,
		`* LIST (\HasChildren) "/" Vegetable`)
	// Example 8: RECURSIVEMATCH reports subscribed inferiors that % does not reach with
	// CHILDINFO, also for a superior that is not subscribed itself (RFC 5258 3.5).
	run(`LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Fruit" "Vegetable")`,
		`* LIST (\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\Subscribed \HasChildren) "/" Vegetable ("CHILDINFO" ("SUBSCRIBED"))`)
	// Without RECURSIVEMATCH, the unsubscribed Fruit is not listed.
	run(`LIST (SUBSCRIBED) "" %ruit`)
	// Multiple patterns, one list (RFC 5258 3).
	run(`LIST "" ("INBOX" "Fruit/A%")`,
		`* LIST (\HasNoChildren) "/" Fruit/Apple`,
		`* LIST (\HasNoChildren) "/" INBOX`)
	// REMOTE adds nothing here; RECURSIVEMATCH alone is a BAD (RFC 5258 3.1).
	run(`LIST (REMOTE) "" Fruit`, `* LIST (\HasChildren) "/" Fruit`)
	rc.expect(`LIST (REMOTE RECURSIVEMATCH) "" *`, "BAD")
	rc.expect(`LIST (BOGUS) "" *`, "BAD")
	rc.expect(`LIST "" * RETURN (BOGUS)`, "BAD")
	rc.expect(`LIST "" (`+strings.Repeat("a ", 64)+`a)`, "BAD [LIMIT]")
}

// TestLsubQuirks: LSUB (RFC 3501 6.3.9) lists an unsubscribed superior that "%" stops at
// as \Noselect, and keeps subscriptions whose mailbox does not exist.
func TestLsubQuirks(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	setupFruit(rc)
	checkLines(t, "LSUB %", rc.ok(`LSUB "" "%ruit"`), []string{`* LSUB (\Noselect \HasChildren) "/" Fruit`})
	checkLines(t, "LSUB Fruit/*", rc.ok(`LSUB "" "Fruit/*"`), []string{
		`* LSUB (\HasNoChildren) "/" Fruit/Banana`,
		`* LSUB (\Noselect) "/" Fruit/Peach`,
	})
	// RFC 9051 6.3.7: deleting a mailbox does not unsubscribe it.
	rc.ok("DELETE Fruit/Banana")
	checkLines(t, "LSUB after DELETE", rc.ok(`LSUB "" "Fruit/B*"`), []string{`* LSUB (\Noselect) "/" Fruit/Banana`})
	checkLines(t, "LIST (SUBSCRIBED) after DELETE", rc.ok(`LIST (SUBSCRIBED) "" "Fruit/B*"`),
		[]string{`* LIST (\NonExistent \Subscribed) "/" Fruit/Banana`})
	// A plain LIST does not show a name that is only subscribed.
	checkLines(t, "LIST after DELETE", rc.ok(`LIST "" "Fruit/B*"`), nil)
	rc.ok("UNSUBSCRIBE Fruit/Banana")
	checkLines(t, "LSUB after UNSUBSCRIBE", rc.ok(`LSUB "" "Fruit/B*"`), nil)
}

// TestListSpecialUse: RFC 6154 examples: the SPECIAL-USE selection and return options, and
// CREATE with USE (RFC 6154 3, 5.3).
func TestListSpecialUse(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.ok(`CREATE MySpecial (USE (\drafts))`)
	rc.expect(`CREATE Everything (USE (\All))`, "NO [USEATTR]")
	rc.expect(`CREATE Odd (USE (\Bogus))`, "NO [USEATTR]")
	rc.expect(`CREATE Two (USE (\Sent \Trash))`, "NO [USEATTR]")
	rc.expect(`CREATE Bad (USE ())`, "BAD")
	checkLines(t, "LIST (SPECIAL-USE)", rc.ok(`LIST (SPECIAL-USE) "" *`), []string{
		`* LIST (\Archive \HasNoChildren) "/" Archive`,
		`* LIST (\Drafts \HasNoChildren) "/" Drafts`,
		`* LIST (\Junk \HasNoChildren) "/" Junk`,
		`* LIST (\Drafts \HasNoChildren) "/" MySpecial`,
		`* LIST (\Sent \HasNoChildren) "/" Sent`,
		`* LIST (\Trash \HasNoChildren) "/" Trash`,
	})
	checkLines(t, "RETURN (SPECIAL-USE)", rc.ok(`LIST "" "My*" RETURN (SPECIAL-USE)`),
		[]string{`* LIST (\Drafts \HasNoChildren) "/" MySpecial`})
	if caps := rc.ok("CAPABILITY"); !contains(caps, " CREATE-SPECIAL-USE") || !contains(caps, " LIST-EXTENDED") ||
		!contains(caps, " LIST-STATUS") || !contains(caps, " MULTIAPPEND") || !contains(caps, " STATUS=SIZE") {
		t.Errorf("CAPABILITY = %q", caps)
	}
	// imapclient parses the same attributes.
	c := login(t, srv)
	boxes, err := c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range boxes {
		if b.Mailbox == "MySpecial" && slices.Contains(b.Attrs, imap.MailboxAttrDrafts) {
			found = true
		}
	}
	if !found {
		t.Errorf("imapclient LIST (SPECIAL-USE) = %v", boxes)
	}
}

// TestListStatus: RFC 5819 2: a STATUS response follows the LIST of each selectable
// mailbox, none for \Noselect ones.
func TestListStatus(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("one", "1"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("two", "2"))
	rc := loginRaw(t, srv)
	rc.ok("CREATE Parent/Child")
	rc.ok("DELETE Parent")
	checkLines(t, "LIST RETURN (STATUS)", rc.ok(`LIST "" ("INBOX" "Parent*") RETURN (STATUS (MESSAGES UNSEEN DELETED))`), []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* STATUS INBOX (MESSAGES 2 UNSEEN 1 DELETED 0)`,
		`* LIST (\Noselect \HasChildren) "/" Parent`,
		`* LIST (\HasNoChildren) "/" Parent/Child`,
		`* STATUS Parent/Child (MESSAGES 0 UNSEEN 0 DELETED 0)`,
	})
	data, err := c.List("", "INBOX", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, Size: true}}).Collect()
	if err != nil || len(data) != 1 || data[0].Status == nil || *data[0].Status.NumMessages != 2 || *data[0].Status.Size == 0 {
		t.Errorf("imapclient LIST RETURN (STATUS) = %+v, %v", data, err)
	}
}

// TestMailboxNamesUTF7: a rev1 session uses modified UTF-7 (RFC 3501 5.1.3), an IMAP4rev2
// session UTF-8 (RFC 9051 5.1), and both name the same mailbox.
func TestMailboxNamesUTF7(t *testing.T) {
	srv := startServer(t)
	rev1 := loginRaw(t, srv)
	rev1.ok(`CREATE "&AMk-t&AOk-/Tom &- Jerry"`)
	checkLines(t, "rev1 LIST", rev1.ok(`LIST "" "&AMk-t&AOk-*"`), []string{
		`* LIST (\HasChildren) "/" &AMk-t&AOk-`,
		`* LIST (\HasNoChildren) "/" "&AMk-t&AOk-/Tom &- Jerry"`,
	})
	// Wildcards stay wildcards in a modified UTF-7 pattern.
	checkLines(t, "rev1 LIST %", rev1.ok(`LIST "" "&AMk-%"`), []string{`* LIST (\HasChildren) "/" &AMk-t&AOk-`})
	rev1.ok(`STATUS "&AMk-t&AOk-/Tom &- Jerry" (MESSAGES)`)

	// A rev1 session may not send 8-bit names (RFC 3501 5.1.3): taken as UTF-8 they would
	// come back from LIST in modified UTF-7, and mbsync 1.4 would see two mailboxes.
	rev1.expect(`CREATE "Café"`, "NO [CANNOT]")
	rev1.expect(`SELECT "Été"`, "NO [CANNOT]")

	// go-imap's client, once IMAP4rev2 is enabled, uses UTF-8 names. (It also expects "&"
	// escaped as in modified UTF-7 there, so names with "&" stay out of this part.)
	c := loginUTF8(t, srv)
	boxes, err := c.List("", "Été", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	if !slices.Equal(names, []string{"Été"}) {
		t.Errorf("imapclient LIST = %q", names)
	}
	if _, err := c.Select("Été", nil).Wait(); err != nil {
		t.Errorf("imapclient SELECT: %v", err)
	}

	// After ENABLE IMAP4rev2 the same session speaks UTF-8.
	rev2 := loginRaw(t, srv)
	rev2.ok("ENABLE IMAP4rev2")
	rev2.ok(`CREATE "Été/Jour & nuit"`)
	checkLines(t, "rev2 LIST", rev2.ok(`LIST "" "Été*"`), []string{
		`* LIST (\HasChildren) "/" "Été"`,
		`* LIST (\HasNoChildren) "/" "Été/Jour & nuit"`,
		`* LIST (\HasNoChildren) "/" "Été/Tom & Jerry"`,
	})
	rev2.ok(`CREATE "Ça/&AMk-"`) // "&" is just a character in UTF-8
	checkLines(t, "rev1 sees the rev2 name", rev1.ok(`LIST "" "&AMc-a/*"`), []string{`* LIST (\HasNoChildren) "/" &AMc-a/&-AMk-`})

	// ENABLE UTF8=ACCEPT switches a rev1 session to UTF-8 names too (RFC 6855 3).
	utf8 := loginRaw(t, srv)
	utf8.ok("ENABLE UTF8=ACCEPT")
	checkLines(t, "UTF8=ACCEPT LIST", utf8.ok(`LIST "" "Ét%"`), []string{`* LIST (\HasChildren) "/" "Été"`})

	// A rev1 client's name that is not modified UTF-7 is refused.
	rev1.expect(`CREATE "&AGE-"`, "NO [CANNOT]")
	rev1.expect(`CREATE "a&b"`, "NO [CANNOT]")
	rev1.expect(`SELECT "&AMk-&AOk-"`, "NO [CANNOT]")
	// The modified UTF-7 form of an 8-bit name works.
	rev1.ok(`CREATE Caf&AOk-`)
	checkLines(t, "rev1 LIST of an 8-bit name", rev1.ok(`LIST "" "Caf*"`), []string{`* LIST (\HasNoChildren) "/" Caf&AOk-`})
	rev1.ok(`RENAME Caf&AOk- "Caf&AOk-s"`)
	rev1.ok(`SUBSCRIBE Caf&AOk-s`)
	checkLines(t, "rev2 LSUB", rev2.ok(`LIST (SUBSCRIBED) "" "Caf*"`), []string{`* LIST (\Subscribed \HasNoChildren) "/" "Cafés"`})
}

// TestMailboxNameEdges: empty names, the delimiter alone, trailing delimiters, INBOX in
// any case, % against *, and the depth limit.
func TestMailboxNameEdges(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.expect(`CREATE ""`, "NO [CANNOT]")
	rc.expect(`CREATE "/"`, "NO [CANNOT]")
	rc.expect(`CREATE "a//b"`, "NO [CANNOT]")
	rc.expect(`CREATE "a*"`, "NO [CANNOT]")
	rc.expect(`CREATE inbox`, "NO [ALREADYEXISTS]")
	rc.expect(`CREATE "INBOX/"`, "NO [ALREADYEXISTS]")
	rc.ok(`CREATE "Trail/"`) // RFC 9051 6.3.4: the trailing delimiter is dropped
	rc.ok(`CREATE inBox/Child`)
	checkLines(t, "LIST inbox/*", rc.ok(`LIST "" "inbox/*"`), []string{`* LIST (\HasNoChildren) "/" INBOX/Child`})
	checkLines(t, "LIST Trail", rc.ok(`LIST "" "Trail*"`), []string{`* LIST (\HasNoChildren) "/" Trail`})
	checkLines(t, "LIST InBoX", rc.ok(`LIST "" InBoX`), []string{`* LIST (\HasChildren) "/" INBOX`})
	rc.ok(`SELECT iNbOx`)
	rc.ok(`STATUS Inbox/Child (MESSAGES)`)
	rc.ok("CREATE Deep/a/b")
	checkLines(t, "LIST Deep/%", rc.ok(`LIST "" "Deep/%"`), []string{`* LIST (\HasChildren) "/" Deep/a`})
	checkLines(t, "LIST Deep/*", rc.ok(`LIST "Deep/" "*"`), []string{
		`* LIST (\HasChildren) "/" Deep/a`,
		`* LIST (\HasNoChildren) "/" Deep/a/b`,
	})
	checkLines(t, "LIST root", rc.ok(`LIST "Deep/" ""`), []string{`* LIST (\Noselect) "/" ""`})
	deep := strings.Repeat("d/", 999) + "d"
	rc.expect(`CREATE "`+deep+`"`, "NO [LIMIT]")
	rc.expect(`CREATE "`+strings.Repeat("x", 1100)+`"`, "NO [LIMIT]")
	rc.expect(`DELETE inbox`, "NO [CANNOT]")
	rc.expect(`DELETE Nope`, "NO [NONEXISTENT]")
	rc.expect(`RENAME Nope Other`, "NO [NONEXISTENT]")
	rc.expect(`RENAME Trail Deep`, "NO [ALREADYEXISTS]")
	rc.expect(`RENAME Trail INBOX`, "NO [ALREADYEXISTS]")
	rc.expect(`RENAME Deep Deep/a/b/c`, "NO [CANNOT]")
	// RENAME of a subtree moves the inferiors (RFC 9051 6.3.6).
	rc.ok(`RENAME Deep Shallow/Deep`)
	checkLines(t, "LIST after RENAME", rc.ok(`LIST "" "*Deep*"`), []string{
		`* LIST (\HasChildren) "/" Shallow/Deep`,
		`* LIST (\HasChildren) "/" Shallow/Deep/a`,
		`* LIST (\HasNoChildren) "/" Shallow/Deep/a/b`,
	})
	// DELETE of a mailbox with inferiors leaves it \Noselect (RFC 9051 6.3.5).
	rc.ok(`DELETE Shallow/Deep/a`)
	checkLines(t, "LIST after DELETE", rc.ok(`LIST "" "Shallow/Deep/a"`), []string{`* LIST (\Noselect \HasChildren) "/" Shallow/Deep/a`})
	rc.expect(`SELECT Shallow/Deep/a`, "NO [NONEXISTENT]")
	rc.expect(`DELETE Shallow/Deep/a`, "NO [CANNOT]")
	rc.ok(`CREATE Shallow/Deep/a`) // a \Noselect name becomes a mailbox again
	rc.ok(`SELECT Shallow/Deep/a`)
}

// TestRenameInbox: RENAME INBOX moves its messages to the new mailbox and leaves INBOX
// empty (RFC 9051 6.3.6).
func TestRenameInbox(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("one", "1"))
	appendMessage(t, c, "INBOX", testMessage("two", "2"))
	rc := loginRaw(t, srv)
	rc.ok("CREATE INBOX/Kept")
	rc.ok("RENAME inbox Old-Inbox")
	checkLines(t, "STATUS INBOX", rc.ok("STATUS INBOX (MESSAGES)"), []string{"* STATUS INBOX (MESSAGES 0)"})
	checkLines(t, "STATUS Old-Inbox", rc.ok("STATUS Old-Inbox (MESSAGES)"), []string{"* STATUS Old-Inbox (MESSAGES 2)"})
	checkLines(t, "LIST INBOX/*", rc.ok(`LIST "" INBOX/*`), []string{`* LIST (\HasNoChildren) "/" INBOX/Kept`})
}
