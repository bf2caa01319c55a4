package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
)

// appendFlagged appends msg to mailbox with flags (an IMAP flag list's contents) and fails
// the test unless it is stored.
func (rc *rawConn) appendFlagged(mailbox, flags, msg string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("x%d", rc.n)
	rc.write(fmt.Sprintf("%s APPEND %s (%s) {%d+}\r\n%s\r\n", tag, mailbox, flags, len(msg), msg))
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "OK") {
		rc.t.Fatalf("APPEND to %s: %s", mailbox, tagged)
	}
}

// uidValidityOf returns the UIDVALIDITY of mailbox as STATUS gives it.
func (rc *rawConn) uidValidityOf(mailbox string) string {
	rc.t.Helper()
	lines := rc.ok("STATUS " + mailbox + " (UIDVALIDITY)")
	if len(lines) != 1 {
		rc.t.Fatalf("STATUS %s: %q", mailbox, lines)
	}
	_, v, _ := strings.Cut(lines[0], "(UIDVALIDITY ")
	return strings.TrimSuffix(v, ")")
}

// multiSearchLine is the ESEARCH response of tag for mailbox (RFC 7377 2.1), with rest
// after the UID indicator.
func (rc *rawConn) multiSearchLine(tag, mailbox, rest string) string {
	rc.t.Helper()
	return fmt.Sprintf(`* ESEARCH (TAG "%s" MAILBOX "%s" UIDVALIDITY %s) UID %s`, tag, mailbox, rc.uidValidityOf(`"`+mailbox+`"`), rest)
}

// esearch sends ESEARCH args, expects OK and returns its untagged responses with the tag
// it went out with.
func (rc *rawConn) esearch(args string) (tag string, untagged []string) {
	rc.t.Helper()
	untagged = rc.ok("ESEARCH " + args)
	return fmt.Sprintf("x%d", rc.n), untagged
}

// checkMultiSearch sends ESEARCH args and checks its untagged responses: want, each one
// the mailbox and the return data after UID, in order.
func (rc *rawConn) checkMultiSearch(args string, want ...[2]string) {
	rc.t.Helper()
	tag, got := rc.esearch(args)
	wantLines := []string{}
	for _, w := range want {
		wantLines = append(wantLines, rc.multiSearchLine(tag, w[0], w[1]))
	}
	if !slices.Equal(got, wantLines) {
		rc.t.Errorf("ESEARCH %s:\n got %q\nwant %q", args, got, wantLines)
	}
}

func TestMultiSearchCapability(t *testing.T) {
	srv := startServer(t)
	rc := dialRaw(t, srv)
	for _, line := range [][]string{rc.ok("CAPABILITY"), loginRaw(t, srv).ok("CAPABILITY")} {
		if !contains(line, " MULTISEARCH") {
			t.Errorf("CAPABILITY %q lacks MULTISEARCH (RFC 7377 2)", line)
		}
	}
}

// folderFixture logs alice in with folder1, folder2, folder2/salmon, folder2/banana and
// folder2/salmon/roe, as in RFC 7377 2's examples, each with messages whose subject is
// "chad" or not and that are \Seen or not.
func folderFixture(t *testing.T) (*embedded.Server, *rawConn) {
	t.Helper()
	srv := startTenants(t)
	a := loginRawAs(t, srv, alice)
	for _, name := range []string{"folder1", "folder2", "folder2/salmon", "folder2/banana", "folder2/salmon/roe"} {
		a.ok("CREATE " + name)
	}
	add := func(mailbox string, subjects ...string) {
		for i, subject := range subjects {
			flags := ""
			if i%2 == 1 {
				flags = `\Seen`
			}
			a.appendFlagged(mailbox, flags, testMessage(subject, "body of "+subject))
		}
	}
	add("INBOX", "chad in the inbox", "other")
	add("folder1", "chad", "hanging chad", "other", "chad again")
	add("folder2", "nothing", "CHAD")
	add("folder2/salmon", "other", "chad", "chad", "salmon")
	add("folder2/banana", "banana")
	add("folder2/salmon/roe", "chad roe")
	return srv, a
}

// TestMultiSearchRFCExamples: RFC 7377 2's examples, on mailboxes of those names.
func TestMultiSearchRFCExamples(t *testing.T) {
	_, a := folderFixture(t)
	// subtree-one: folder2 and its children, not folder2/salmon/roe.
	a.checkMultiSearch(`IN (mailboxes "folder1" subtree-one "folder2") subject "chad"`,
		[2]string{"folder1", "ALL 1:2,4"}, [2]string{"folder2", "ALL 2"}, [2]string{"folder2/salmon", "ALL 2:3"})
	// subtree: every level; folder2/banana has no unseen match and no response.
	a.checkMultiSearch(`IN (mailboxes "folder1" subtree "folder2") unseen subject chad`,
		[2]string{"folder1", "ALL 1"}, [2]string{"folder2/salmon", "ALL 3"}, [2]string{"folder2/salmon/roe", "ALL 1"})
}

// TestMultiSearchSources: every source of RFC 7377 2.2 (RFC 5465 6).
func TestMultiSearchSources(t *testing.T) {
	srv, a := folderFixture(t)
	a.ok("SUBSCRIBE folder2/banana")
	a.ok("SUBSCRIBE folder1")
	a.ok("SUBSCRIBE gone") // a subscription to no mailbox is no mailbox to search
	all := [][2]string{
		{"INBOX", "COUNT 2"}, {"folder1", "COUNT 4"}, {"folder2", "COUNT 2"}, {"folder2/banana", "COUNT 1"},
		{"folder2/salmon", "COUNT 4"}, {"folder2/salmon/roe", "COUNT 1"},
	}
	a.checkMultiSearch(`IN (personal) RETURN (COUNT) ALL`, all...)
	a.checkMultiSearch(`IN (inboxes) RETURN (COUNT) ALL`, all[0])
	a.checkMultiSearch(`IN (subscribed) RETURN (COUNT) ALL`, all[0], all[1], all[3]) // INBOX from the start
	a.checkMultiSearch(`IN (subtree folder2/salmon) RETURN (COUNT) ALL`, all[4], all[5])
	a.checkMultiSearch(`IN (subtree-one (folder2/salmon folder1)) RETURN (COUNT) ALL`, all[4], all[5], all[1])
	a.checkMultiSearch(`IN (mailboxes (inbox folder2 nonexistent)) RETURN (COUNT) ALL`, all[0], all[2])
	// Each mailbox once, in the order the sources name them.
	a.checkMultiSearch(`IN (mailboxes folder1 personal inboxes) RETURN (COUNT) ALL`, all[1], all[0], all[2], all[3], all[4], all[5])
	// RETURN: MIN, MAX, ALL and COUNT in the client's order; none is ALL (RFC 7377 2.1).
	a.checkMultiSearch(`IN (mailboxes folder2/salmon) RETURN (MAX COUNT MIN) NOT subject salmon`, [2]string{"folder2/salmon", "MAX 3 COUNT 3 MIN 1"})
	a.checkMultiSearch(`IN (mailboxes folder2/salmon) RETURN () seen`, [2]string{"folder2/salmon", "ALL 2,4"})
	// Nothing found anywhere: no response, OK.
	a.checkMultiSearch(`IN (personal) subject "no such subject"`)

	// The authenticated state has no selected mailbox (RFC 7377 2).
	for _, args := range []string{`ALL`, `IN (selected) ALL`, `IN (personal selected-delayed) ALL`} {
		a.expect("ESEARCH "+args, "BAD")
	}
	// In the selected state, selected (explicit or not) is the session's mailbox, as its
	// view has it.
	a.ok("SELECT folder2/salmon")
	other := loginRawAs(t, srv, alice)
	other.ok("SELECT folder2/salmon")
	other.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	a.noopUntil("* 1 EXPUNGE")
	a.checkMultiSearch(`RETURN (COUNT) ALL`, [2]string{"folder2/salmon", "COUNT 3"})
	a.checkMultiSearch(`IN (selected-delayed mailboxes folder2/salmon inboxes) RETURN (COUNT) ALL`, [2]string{"folder2/salmon", "COUNT 3"}, all[0])
	a.checkMultiSearch(`IN (selected personal) RETURN (COUNT) 1:2`, [2]string{"folder2/salmon", "COUNT 2"},
		[2]string{"INBOX", "COUNT 2"}, [2]string{"folder1", "COUNT 2"}, [2]string{"folder2", "COUNT 2"}, [2]string{"folder2/banana", "COUNT 1"},
		[2]string{"folder2/salmon/roe", "COUNT 1"})
}

// TestMultiSearchSave: RETURN (SAVE) only with the selected mailbox alone (RFC 7377 2),
// and "$" then refers to its result (RFC 5182).
func TestMultiSearchSave(t *testing.T) {
	_, a := folderFixture(t)
	a.ok("SELECT folder1")
	if got := a.ok(`ESEARCH RETURN (SAVE) subject chad`); len(got) != 0 {
		t.Errorf("ESEARCH RETURN (SAVE) alone answered %q (RFC 5182 2.4: nothing)", got)
	}
	a.checkMultiSearch(`IN (selected) RETURN (ALL) NOT $`, [2]string{"folder1", "ALL 3"})
	a.checkMultiSearch(`RETURN (SAVE MIN) seen`, [2]string{"folder1", "MIN 2"})
	if got := a.ok("UID SEARCH $"); !slices.Equal(got, []string{"* SEARCH 2"}) {
		t.Errorf("UID SEARCH $ after SAVE MIN = %q", got)
	}
	for _, args := range []string{
		`IN (personal) RETURN (SAVE) ALL`,
		`IN (selected inboxes) RETURN (SAVE COUNT) ALL`,
		`IN (mailboxes folder1) $`,
	} {
		a.expect("ESEARCH "+args, "BAD")
	}
}

// TestMultiSearchRights: another user's mailboxes are searched through the other users'
// namespace when the session may read them (RFC 4314 4: r); one shared without r is
// skipped without an error (RFC 7377 2.2), as is one that is not shared at all.
func TestMultiSearchRights(t *testing.T) {
	srv, a := folderFixture(t)
	grantTo := func(mailbox, rights string) { a.ok(`SETACL ` + mailbox + ` ` + bob + ` "` + rights + `"`) }
	grantTo("folder1", "lr")
	grantTo("folder2", "l")        // listed, not readable
	grantTo("folder2/salmon", "r") // readable, not listed
	adminCreateMailbox(t, srv, "tenant:"+embedded.DemoTenant, "Support")
	adminSetACL(t, srv, "tenant:"+embedded.DemoTenant, "Support", "anyone", "lri")
	s := loginRawAs(t, srv, alice)
	s.appendFlagged("Shared/Support", "", testMessage("chad at support", "x"))

	b := loginRawAs(t, srv, bob)
	b.ok("CREATE mine")
	b.appendFlagged("mine", "", testMessage("chad of bob", "x"))
	const other = "Other Users/alice@example.com/"
	b.checkMultiSearch(`IN (subtree "Other Users" subtree Shared personal) subject chad`,
		[2]string{other + "folder1", "ALL 1:2,4"}, [2]string{"Shared/Support", "ALL 1"}, [2]string{"mine", "ALL 1"})
	b.checkMultiSearch(`IN (subtree "Other Users/ALICE@example.com/folder2") subject chad`)
	// Named, the mailbox it may read but not list is searched (RFC 4314 4); the one it may
	// list but not read, and the one it may neither, are not.
	b.checkMultiSearch(`IN (mailboxes ("`+other+`folder2" "`+other+`folder2/salmon" "`+other+`INBOX")) subject chad`,
		[2]string{other + "folder2/salmon", "ALL 2:3"})
	// Taking r away takes the mailbox out of the next search.
	grantTo("folder1", "l")
	b.checkMultiSearch(`IN (subtree "Other Users") subject chad`)
}

// TestMultiSearchBad: syntax errors and options ESEARCH does not take are BAD; an
// unknown charset NO [BADCHARSET] (RFC 9051 6.4.4).
func TestMultiSearchBad(t *testing.T) {
	_, a := folderFixture(t)
	for _, args := range []string{
		``, `IN (personal)`, `IN () ALL`, `IN (everything) ALL`, `IN (subtree) ALL`, `IN (personal (depth 1)) ALL`,
		`IN (personal) RETURN (PARTIAL 1:5) ALL`, `IN (personal) RETURN (UPDATE) ALL`, `IN (personal) RETURN (RELEVANCY) ALL`,
		`IN (personal) RETURN (FOO) ALL`, `IN (personal) NOSUCHKEY`, `IN (personal) ALL)`,
	} {
		a.expect("ESEARCH "+args, "BAD")
	}
	a.expect("UID ESEARCH IN (personal) ALL", "BAD")
	a.expect("ESEARCH IN (personal) CHARSET KOI8-R ALL", "NO [BADCHARSET")
	a.ok("ENABLE UIDONLY")
	a.expect("ESEARCH IN (personal) 1:3", "BAD [UIDREQUIRED]") // RFC 9586 3
	a.checkMultiSearch(`IN (mailboxes folder2) RETURN (COUNT) UID 1:*`, [2]string{"folder2", "COUNT 2"})
}

// TestMultiSearchLimits: more mailboxes or messages than the server's limits is NO [LIMIT]
// (RFC 5530 3) before anything is searched.
func TestMultiSearchLimits(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPLimits = imap.Limits{MaxMultiSearchMailboxes: 3, MaxMultiSearchMessages: 5}
	})
	rc := loginRaw(t, srv)
	for _, name := range []string{"a", "b", "c"} {
		rc.ok("CREATE " + name)
	}
	rc.appendFlagged("a", "", testMessage("one", "x"))
	rc.appendFlagged("b", "", testMessage("two", "x"))
	rc.checkMultiSearch(`IN (mailboxes (a b c)) RETURN (COUNT) ALL`, [2]string{"a", "COUNT 1"}, [2]string{"b", "COUNT 1"})
	// INBOX and the demo account's special mailboxes make more than 3.
	if _, tagged := rc.cmd(`ESEARCH IN (personal) ALL`); !strings.HasPrefix(tagged, "NO [LIMIT]") {
		t.Errorf("ESEARCH over every mailbox: %s, want NO [LIMIT]", tagged)
	}
	if _, tagged := rc.cmd(`ESEARCH IN (mailboxes (a b c d)) ALL`); !strings.HasPrefix(tagged, "NO [LIMIT]") {
		t.Errorf("ESEARCH naming 4 mailboxes: %s, want NO [LIMIT]", tagged)
	}
	for range 4 {
		rc.appendFlagged("c", "", testMessage("more", "x"))
	}
	if _, tagged := rc.cmd(`ESEARCH IN (mailboxes (a b c)) ALL`); !strings.HasPrefix(tagged, "NO [LIMIT]") {
		t.Errorf("ESEARCH over 6 messages: %s, want NO [LIMIT]", tagged)
	}
	rc.checkMultiSearch(`IN (mailboxes (a c)) RETURN (COUNT) ALL`, [2]string{"a", "COUNT 1"}, [2]string{"c", "COUNT 4"})
}

// TestMultiSearchMatchesSearch: for each criteria, ESEARCH over every mailbox answers what
// UID SEARCH RETURN (...) answers in each mailbox selected in turn.
func TestMultiSearchMatchesSearch(t *testing.T) { bothModes(t, testMultiSearchMatchesSearch) }

func testMultiSearchMatchesSearch(t *testing.T, rev2 bool) {
	srv := startServer(t)
	rc := loginRawMode(t, srv, rev2)
	names := []string{"INBOX", "Lists", "Lists/IETF", "Répertoire"}
	wire := func(name string) string { // the session's form (RFC 3501 5.1.3, RFC 9051 5.1)
		if rev2 || name != "Répertoire" {
			return name
		}
		return "R&AOk-pertoire"
	}
	for k, name := range names {
		if name != "INBOX" {
			rc.ok(`CREATE "` + wire(name) + `"`)
		}
		for i := range 6 + 2*k {
			flags := []string{"", `\Seen`, `\Flagged`, `\Seen \Flagged`, "$Work"}[(i+k)%5]
			body := []string{"lunch on friday", "quarterly report", "nothing much"}[(i*k+i)%3]
			rc.appendFlagged(`"`+wire(name)+`"`, flags, testMessage(fmt.Sprintf("m%d of %s", i, name), body))
		}
	}
	// A name in IN is in the session's form too (modified UTF-7 in IMAP4rev1).
	rc.checkMultiSearch(`IN (mailboxes "`+wire("Répertoire")+`") RETURN (COUNT) ALL`, [2]string{wire("Répertoire"), "COUNT 12"})
	rc.ok("ENABLE CONDSTORE") // so that MODSEQ below adds no HIGHESTMODSEQ to the first SEARCH
	criteria := []string{
		"ALL", "SEEN", `UNSEEN NOT FLAGGED`, `KEYWORD $Work`, `SUBJECT "m3"`, `BODY report`, `OR BODY lunch FLAGGED`,
		`TEXT friday`, `2:4`, `LARGER 10 NOT 1`, `UID 3:5`, `FROM alice HEADER Message-ID m1`, `MODSEQ 1`, `SENTBEFORE 1-Jan-2000 UNSEEN`,
	}
	for _, crit := range criteria {
		for _, ret := range []string{"ALL", "MIN MAX COUNT"} {
			var want []string
			for _, name := range names {
				rc.ok(`EXAMINE "` + wire(name) + `"`)
				got := rc.ok(`UID SEARCH RETURN (` + ret + `) ` + crit)
				if len(got) != 1 {
					t.Fatalf("UID SEARCH %s in %s: %q", crit, name, got)
				}
				_, data, _ := strings.Cut(got[0], " UID ")
				if data == "" || data == "COUNT 0" {
					continue // nothing found: no ESEARCH response for the mailbox
				}
				want = append(want, fmt.Sprintf("MAILBOX \"%s\" UIDVALIDITY %s) UID %s", wire(name), rc.uidValidityOf(`"`+wire(name)+`"`), data))
			}
			rc.ok("UNSELECT")
			tag, got := rc.esearch(`IN (personal) RETURN (` + ret + `) ` + crit)
			for i := range want {
				want[i] = `* ESEARCH (TAG "` + tag + `" ` + want[i]
			}
			if !slices.Equal(got, want) {
				t.Errorf("ESEARCH IN (personal) RETURN (%s) %s:\n got %q\nwant %q", ret, crit, got, want)
			}
		}
	}
}

// TestMultiSearchDeadline: the scans of all the mailboxes of an ESEARCH end by one
// deadline (Limits.SearchTimeout), past which it answers NO [LIMIT] (RFC 5530 3).
func TestMultiSearchDeadline(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SearchTimeout = time.Nanosecond })
	rc := loginRaw(t, srv)
	rc.appendFlagged("INBOX", "", testMessage("one", "x"))
	rc.expect("ESEARCH IN (personal) ALL", "NO [LIMIT] ESEARCH took longer than this server allows")
	rc.ok("SELECT INBOX")
	rc.expect("ESEARCH SUBJECT one", "NO [LIMIT]")
}
