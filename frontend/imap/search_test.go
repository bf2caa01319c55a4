package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/embedded"
)

func TestSearch(t *testing.T) { bothModes(t, testSearch) }

func testSearch(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := loginMode(t, srv, rev2)
	appendMessage(t, c, "INBOX", testMessage("alpha", "the quick brown fox"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("beta", "jumps over"), imap.FlagFlagged)
	appendMessage(t, c, "INBOX", testMessage("gamma", "the lazy dog"))
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	// Without RETURN: SEARCH in IMAP4rev1, ESEARCH in IMAP4rev2 (RFC 9051 6.4.4).
	for query, want := range map[string]string{
		"SEARCH ALL":                          "1 2 3", // imaplib's default
		"SEARCH UNSEEN":                       "2 3",
		"SEARCH SEEN":                         "1",
		"SEARCH FLAGGED UNSEEN":               "2",
		"SEARCH NOT FLAGGED":                  "1 3",
		"SEARCH OR SEEN FLAGGED":              "1 2",
		"SEARCH 2:*":                          "2 3",
		"UID SEARCH UID 1,3":                  "1 3",
		"SEARCH SUBJECT beta":                 "2",
		"SEARCH FROM alice@example.org":       "1 2 3",
		"SEARCH HEADER Message-ID gamma":      "3",
		"SEARCH BODY lazy":                    "3",
		"SEARCH TEXT QUICK":                   "1",
		"SEARCH LARGER 1000000":               "",
		"SEARCH SENTON 7-Feb-1994":            "1 2 3",
		"SEARCH SINCE 1-Jan-2000 NOT DELETED": "1 2 3",
		"SEARCH CHARSET UTF-8 (KEYWORD $X)":   "",
	} {
		rc.okSearch(rev2, query, want)
	}
	for query, want := range map[string]string{
		"SEARCH RETURN (MIN MAX COUNT) UNSEEN": " MIN 2 MAX 3 COUNT 2",
		"UID SEARCH RETURN (COUNT ALL) UNSEEN": " UID COUNT 2 ALL 2:3",
		"SEARCH RETURN () LARGER 1000000":      "",
	} {
		got := rc.ok(query)
		tag := fmt.Sprintf("x%d", rc.n)
		if !slices.Equal(got, []string{`* ESEARCH (TAG "` + tag + `")` + want}) {
			t.Errorf("%s = %q", query, got)
		}
	}
	rc.expect("SEARCH CHARSET KOI8-R ALL", "NO [BADCHARSET")
	rc.expect("SEARCH BOGUS", "BAD")

	// imapclient's SEARCH (it asks for ESEARCH with RETURN when the server has it).
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if uids := data.AllUIDs(); !slices.Equal(uids, []imap.UID{2, 3}) {
		t.Errorf("imapclient UID SEARCH UNSEEN = %v", uids)
	}
}

// TestSearchGrammar covers the keys and combinations of RFC 9051 6.4.4 over three messages:
// 1 "alpha" \Seen, 2 "beta" \Flagged $Work, 3 "gamma" \Answered \Deleted \Draft.
func TestSearchGrammar(t *testing.T) { bothModes(t, testSearchGrammar) }

func testSearchGrammar(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("alpha", "the quick brown fox"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("beta", "jumps over"), imap.FlagFlagged, "$Work")
	appendMessage(t, c, "INBOX", strings.Replace(testMessage("gamma", "the lazy dog"), "To: Demo", "Cc: carol@example.net\r\nBcc: dave@example.net\r\nTo: Demo", 1),
		imap.FlagAnswered, imap.FlagDeleted, imap.FlagDraft)
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	for query, want := range map[string]string{
		"SEARCH ANSWERED":                         "3",
		"SEARCH UNANSWERED":                       "1 2",
		"SEARCH DELETED":                          "3",
		"SEARCH UNDELETED":                        "1 2",
		"SEARCH DRAFT":                            "3",
		"SEARCH UNDRAFT":                          "1 2",
		"SEARCH UNFLAGGED":                        "1 3",
		"SEARCH KEYWORD $work":                    "2", // keywords are case-insensitive
		"SEARCH UNKEYWORD $Work":                  "1 3",
		"search or seen (flagged keyword $WORK)":  "1 2",
		"SEARCH OR (SEEN) OR FLAGGED DRAFT":       "1 2 3",
		"SEARCH NOT (OR SEEN FLAGGED)":            "3",
		"SEARCH NOT NOT SEEN":                     "1",
		"SEARCH ((SEEN))":                         "1",
		"SEARCH 3:1":                              "1 2 3",
		"SEARCH *":                                "3",
		"SEARCH *:2":                              "2 3",
		"SEARCH 1,3 2:3":                          "3",
		"SEARCH UID 2:*":                          "2 3",
		"SEARCH UID 5:*":                          "3", // "*" is the highest UID in use
		"UID SEARCH 2":                            "2",
		"SEARCH CC carol":                         "3",
		"SEARCH NOT CC carol":                     "1 2",
		"SEARCH OR CC carol SUBJECT BETA":         "2 3",
		"SEARCH NOT OR HEADER Cc carol TO nobody": "1 2",
		"SEARCH BCC DAVE@":                        "3",
		"SEARCH TO demo":                          "1 2 3",
		"SEARCH HEADER Message-ID \"\"":           "1 2 3",
		"SEARCH HEADER X-Missing \"\"":            "",
		"SEARCH SUBJECT \"\"":                     "1 2 3",
		"SEARCH SUBJECT {4+}\r\nBETA":             "2",
		"SEARCH BODY \"brown fox\"":               "1",
		"SEARCH BODY Subject":                     "",
		"SEARCH TEXT subject":                     "1 2 3",
		"SEARCH TEXT \"\"":                        "1 2 3",
		"SEARCH LARGER 1 SMALLER 100000":          "1 2 3",
		"SEARCH SMALLER 10":                       "",
		"SEARCH SENTBEFORE 7-Feb-1994":            "",
		"SEARCH SENTBEFORE 8-feb-1994":            "1 2 3",
		"SEARCH SENTSINCE 8-Feb-1994":             "",
		"SEARCH SENTON 07-Feb-1994":               "1 2 3",
		"SEARCH BEFORE 1-Jan-2000":                "",
		"SEARCH ON 1-Jan-2000":                    "",
		"SEARCH SINCE 1-Jan-2000":                 "1 2 3",
		"SEARCH ALL UNSEEN ALL":                   "2 3",
	} {
		rc.okSearch(rev2, query, want)
	}
	// RECENT, NEW and OLD: the messages are recent in IMAP4rev1 (the first SELECT after
	// delivery, RFC 3501 2.3.2); IMAP4rev2 has no \Recent (RFC 9051 appendix E), so no message
	// is recent there.
	if rev2 {
		rc.okSearch(rev2, "SEARCH NEW", "")
		rc.okSearch(rev2, "SEARCH OLD", "1 2 3")
		rc.okSearch(rev2, "SEARCH RECENT", "")
	} else {
		rc.okSearch(rev2, "SEARCH NEW", "2 3") // recent and unseen
		rc.okSearch(rev2, "SEARCH OLD", "")
		rc.okSearch(rev2, "SEARCH RECENT", "1 2 3")
	}
	for _, query := range []string{
		"SEARCH", "SEARCH ()", "SEARCH OR SEEN", "SEARCH NOT", "SEARCH (SEEN", "SEARCH SEEN)",
		"SEARCH 0", "SEARCH 1:", "SEARCH BEFORE 32-Jan-2000",
		"SEARCH BEFORE 1-Foo-2000", "SEARCH LARGER x", "SEARCH UID", "SEARCH HEADER Subject",
		"SEARCH RETURN (BOGUS) ALL", "SEARCH SUBJECT {3+}\r\na\x00b",
	} {
		rc.expect(query, "BAD")
	}
	// UNRECENT is in no RFC.
	rc.expect("SEARCH UNRECENT", "BAD")
}

// TestSearchAddresses: FROM, TO, CC and BCC match the address list as parsed, display name
// and mailbox@host without comments and folding white space, as well as the field's text,
// case-insensitively as substrings (RFC 9051 6.4.4). The messages are those of imaptest's
// search-addresses test, with two of their keys.
func TestSearchAddresses(t *testing.T) { bothModes(t, testSearchAddresses) }

func testSearchAddresses(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	for _, header := range []string{
		"From: user-from@domain.org\nTo: user-to@domain.org\nCc: user-cc@domain.org\nBcc: user-bcc@domain.org",
		"From: RealFrom <user-from@domain.org>\nTo: RealTo <user-to@domain.org>\nCc: RealCc <user-cc@domain.org>\nBcc: RealBcc <user-bcc@domain.org>",
		"From: <user-from (comment)@ (comment) domain.org>\nTo: <user-to@domain.org>\nCc: <user-cc@domain.org>\nBcc: <user-bcc@domain.org>",
		"From: user-from@domain.org (RealFrom)\nTo: user-to@domain.org (RealTo)\nCc: user-cc@domain.org (RealCc)\nBcc: user-bcc@domain.org (RealBcc)",
		"From: user-from1@domain.org, user-from2@domain.org\nCc: user-cc@domain.org",
		"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\n  groupname2: groupuser3@domain.org;",
		"From: =?UTF-8?Q?Andr=C3=A9?= <andre (the one)@\n (folded) example.org>",
	} {
		appendMessage(t, c, "INBOX", strings.ReplaceAll(header+"\nSubject: addresses\n\nbody\n", "\n", "\r\n"))
	}
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	literal := func(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }
	for query, want := range map[string]string{
		"SEARCH FROM user-from@domain.org":                      "1 2 3 4",
		"SEARCH TO user-to@domain.org":                          "1 2 3 4",
		"SEARCH CC user-cc@domain.org":                          "1 2 3 4 5",
		"SEARCH BCC user-bcc@domain.org":                        "1 2 3 4",
		"SEARCH FROM USER-FROM@DOMAIN.ORG":                      "1 2 3 4",
		"SEARCH FROM realfrom":                                  "2 4",
		"SEARCH TO realto":                                      "2 4",
		"SEARCH CC realcc":                                      "2 4",
		"SEARCH BCC realbcc":                                    "2 4",
		"SEARCH FROM ser-fro":                                   "1 2 3 4 5",
		"SEARCH FROM ealfro":                                    "2 4",
		"SEARCH FROM \"RealFrom <user-from@\"":                  "2 4",
		"SEARCH FROM user-from1":                                "5",
		"SEARCH FROM user-from2":                                "5",
		"SEARCH TO groupname":                                   "6",
		"SEARCH TO groupname2":                                  "6",
		"SEARCH TO groupuser3":                                  "6",
		"SEARCH TO groupuser4":                                  "",
		"SEARCH FROM andre@example.org":                         "7",
		"SEARCH CHARSET UTF-8 FROM " + literal("andré <andre@"): "7",
		// The field's text still matches, comments included.
		"SEARCH FROM \"(comment)\"":         "3",
		"SEARCH FROM \"(the one)\"":         "7",
		"SEARCH NOT FROM domain.org":        "6 7",
		"SEARCH OR FROM andre TO groupname": "6 7",
		"SEARCH HEADER From \"\"":           "1 2 3 4 5 7",
		"SEARCH HEADER To \"\"":             "1 2 3 4 6",
	} {
		rc.okSearch(rev2, query, want)
	}
}

// TestSearchCharset: substring keys match decoded text (RFC 2047 words, quoted-printable,
// base64, charsets) with Unicode case folding (RFC 9051 6.4.4).
func TestSearchCharset(t *testing.T) { bothModes(t, testSearchCharset) }

func testSearchCharset(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	latin1 := strings.ReplaceAll("From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\n"+
		"Subject: =?UTF-8?B?w4ljb2xlIGQnw6l0w6k=?=\n"+
		"MIME-Version: 1.0\n"+
		"Content-Type: multipart/mixed; boundary=\"Z\"\n\n"+
		"--Z\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"+
		"Sch=F6ne Gr=FC=DFe aus K=F6ln, mit einer sehr lang=\nen Zeile\n"+
		"--Z\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"+
		"PHA+zqPOpM6hzpHOpM6RPC9wPg==\n"+
		"--Z\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\nbmVlZGxlIGluIGFuIGltYWdl\n"+
		"--Z--\n", "\n", "\r\n")
	appendMessage(t, c, "INBOX", latin1)
	appendMessage(t, c, "INBOX", testMessage("plain", "nothing special, Kelvin"))
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	literal := func(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }
	for query, want := range map[string]string{
		"SEARCH CHARSET UTF-8 FROM " + literal("ANDRÉ"):               "1",
		"SEARCH CHARSET UTF-8 SUBJECT " + literal("école D'ÉTÉ"):      "1",
		"SEARCH CHARSET utf-8 BODY " + literal("GRÜ\u00dfE AUS KÖLN"): "1", // iso-8859-1 QP
		"SEARCH BODY langen": "1", // soft line break
		"SEARCH CHARSET UTF-8 BODY " + literal("στρατα"): "1", // base64 UTF-8, Greek final folding
		"SEARCH BODY needle":                                  "", // not a text part
		"SEARCH CHARSET UTF-8 TEXT " + literal("andré"):       "1",
		"SEARCH TEXT multipart/mixed":                         "1",
		"SEARCH CHARSET UTF-8 BODY " + literal("\u212aELVIN"): "2", // KELVIN SIGN folds with K
		"SEARCH CHARSET US-ASCII BODY kelvin":                 "2",
		"SEARCH CHARSET UTF-8 BODY " + literal("ö"):           "1",
	} {
		rc.okSearch(rev2, query, want)
	}
	rc.expect("SEARCH CHARSET ISO-8859-1 BODY x", "NO [BADCHARSET (UTF-8 US-ASCII)]")
}

// TestSearchESearch: RFC 4731 / RFC 9051 6.4.4 result options, the same in IMAP4rev1 and
// IMAP4rev2 sessions; without RETURN only IMAP4rev2 answers ESEARCH.
func TestSearchESearch(t *testing.T) { bothModes(t, testSearchESearch) }

func testSearchESearch(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendNumbered(t, c, 5, everyOther(0, imap.FlagSeen)) // 1, 3 and 5
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	for query, want := range map[string]string{
		"SEARCH RETURN (MIN) SEEN":               " MIN 1",
		"SEARCH RETURN (MAX) SEEN":               " MAX 5",
		"SEARCH RETURN (ALL) SEEN":               " ALL 1,3,5",
		"SEARCH RETURN (COUNT) SEEN":             " COUNT 3",
		"SEARCH RETURN () SEEN":                  " ALL 1,3,5",
		"SEARCH RETURN (min max all count) ALL":  " MIN 1 MAX 5 ALL 1:5 COUNT 5",
		"UID SEARCH RETURN (MIN MAX) UNSEEN":     " UID MIN 2 MAX 4",
		"UID SEARCH RETURN (ALL) UID 3:*":        " UID ALL 3:5",
		"SEARCH RETURN (MIN MAX ALL COUNT) 9:10": " COUNT 0",
		"SEARCH RETURN (COUNT) UID 10":           " COUNT 0",
	} {
		got := rc.ok(query)
		tag := fmt.Sprintf("x%d", rc.n)
		if !slices.Equal(got, []string{`* ESEARCH (TAG "` + tag + `")` + want}) {
			t.Errorf("%s = %q, want %q", query, got, want)
		}
	}
	// Without RETURN: SEARCH in IMAP4rev1, ESEARCH in IMAP4rev2 (RFC 9051 6.4.4, 7.3.4).
	rc.okSearch(rev2, "UID SEARCH SEEN", "1 3 5")
	rc.okSearch(rev2, "SEARCH NOT ALL", "")
	if !rev2 {
		// Enabled in the selected state, IMAP4rev2 applies from the next command.
		rc.ok("ENABLE IMAP4rev2")
		rc.okSearch(true, "UID SEARCH SEEN", "1 3 5")
	}
}

// TestSearchRes: RFC 5182, the saved result "$" across commands, its update on expunge and
// its reset by a failing SEARCH.
func TestSearchRes(t *testing.T) { bothModes(t, testSearchRes) }

func testSearchRes(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendNumbered(t, c, 6, everyOther(1, imap.FlagFlagged)) // 2, 4 and 6
	rc := loginRawMode(t, srv, rev2)
	rc.ok("CREATE Saved")
	rc.ok("SELECT INBOX")
	if !strings.Contains(strings.Join(rc.ok("CAPABILITY"), " "), " SEARCHRES") {
		t.Error("CAPABILITY lacks SEARCHRES")
	}
	// Before any SAVE, "$" is empty.
	if got := rc.ok("FETCH $ UID"); len(got) != 0 {
		t.Errorf("FETCH $ before SAVE = %q", got)
	}
	// SAVE alone: no untagged response (RFC 5182 2.4).
	if got := rc.ok("SEARCH RETURN (SAVE) FLAGGED"); len(got) != 0 {
		t.Errorf("SEARCH RETURN (SAVE) = %q", got)
	}
	check := func(cmd string, want ...string) {
		t.Helper()
		if got := rc.ok(cmd); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	check("FETCH $ (UID)", "* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "* 6 FETCH (UID 6)")
	flagged := recentFlags(rev2, `\Flagged`)
	check("UID FETCH $ FLAGS", `* 2 FETCH (UID 2 FLAGS `+flagged+`)`, `* 4 FETCH (UID 4 FLAGS `+flagged+`)`, `* 6 FETCH (UID 6 FLAGS `+flagged+`)`)
	rc.okSearch(rev2, "SEARCH $ 1:4", "2 4")
	rc.okSearch(rev2, "UID SEARCH UID $ NOT 6", "2 4")
	check(`STORE $ +FLAGS.SILENT (\Deleted)`)
	rc.okSearch(rev2, "SEARCH DELETED", "2 4 6")
	rc.ok("COPY $ Saved")
	// Expunged messages leave the saved result (RFC 5182 2.1).
	rc.ok(`STORE 2 -FLAGS (\Deleted)`)
	rc.ok(`STORE 6 -FLAGS (\Deleted)`)
	rc.ok("EXPUNGE")
	rc.okSearch(rev2, "UID SEARCH $", "2 6")
	// SAVE with MIN: only the lowest is kept; with ALL or COUNT, every match.
	check("UID SEARCH RETURN (SAVE MIN) FLAGGED", fmt.Sprintf(`* ESEARCH (TAG "x%d") UID MIN 2`, rc.n+1))
	check("UID FETCH $ UID", "* 2 FETCH (UID 2)")
	check("SEARCH RETURN (SAVE MIN COUNT) FLAGGED", fmt.Sprintf(`* ESEARCH (TAG "x%d") MIN 2 COUNT 2`, rc.n+1))
	rc.okSearch(rev2, "UID SEARCH $", "2 6")
	// A failing SEARCH with SAVE empties the result (RFC 5182 2.1).
	rc.expect("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL", "NO [BADCHARSET")
	check("FETCH $ UID")
	// The result belongs to the selected mailbox and is reset by SELECT.
	rc.ok("SEARCH RETURN (SAVE) ALL")
	rc.ok("SELECT Saved")
	check("FETCH $ UID")
	rc.okSearch(rev2, "UID SEARCH ALL", "1 2 3")
}

// TestSearchManyBatches searches a mailbox larger than one batch of stored records, so the
// prefetching scan (scanRecords) must keep every batch in sequence order.
func TestSearchManyBatches(t *testing.T) { bothModes(t, testSearchManyBatches) }

func testSearchManyBatches(t *testing.T, rev2 bool) {
	srv := startServer(t)
	fillMailbox(t, srv, 700)
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	rc.ok(`STORE 300:310 +FLAGS.SILENT (\Flagged)`)
	for query, want := range map[string]string{
		"SEARCH SUBJECT bench-000650":                         "651",
		"SEARCH OR SUBJECT bench-000001 SUBJECT bench-000699": "2 700",
		"UID SEARCH FLAGGED HEADER Message-ID bench-00030":    "301 302 303 304 305 306 307 308 309 310",
	} {
		rc.okSearch(rev2, query, want)
	}
	// Every message shares one stored body: BODY reads all 700 blobs.
	got := rc.ok(`SEARCH RETURN (COUNT MIN MAX) BODY "BENCHMARK body"`)
	if want := fmt.Sprintf(`* ESEARCH (TAG "x%d") COUNT 700 MIN 1 MAX 700`, rc.n); !slices.Equal(got, []string{want}) {
		t.Errorf("SEARCH BODY = %q, want %q", got, want)
	}
}

// TestSearchHeadersNeverReadBodies removes every body from the blob store: header, date and
// size keys still work (they use the stored records), BODY fails with NO when it must read
// a body (a needle with a space, which the search index's word dictionary cannot answer
// alone). The bodies are kept a file each (embedded's default), which the test can remove
// under the server.
func TestSearchHeadersNeverReadBodies(t *testing.T) { bothModes(t, testSearchHeadersNeverReadBodies) }

func testSearchHeadersNeverReadBodies(t *testing.T, rev2 bool) {
	dataDir := t.TempDir()
	// A file per body, so that removing the files removes every body (packed
	// bodies would stay in their segment files).
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir, cfg.BlobFilePerBody = dataDir, true })
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("=?UTF-8?Q?caf=C3=A9?= time", "The body."))
	appendMessage(t, c, "INBOX", testMessage("other", "Other body."))
	if err := os.RemoveAll(filepath.Join(dataDir, "blobs", "t")); err != nil {
		t.Fatal(err)
	}
	rc := loginRawMode(t, srv, rev2)
	rc.ok("SELECT INBOX")
	for query, want := range map[string]string{
		"SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nCAFÉ":           "1",
		"SEARCH OR HEADER Message-ID other FROM nobody":       "2",
		"SEARCH SENTON 7-Feb-1994 LARGER 10 SINCE 1-Jan-2000": "1 2",
	} {
		rc.okSearch(rev2, query, want)
	}
	rc.expect(`SEARCH BODY "the body"`, "NO")
	rc.ok("NOOP")
}

// TestSearchOnOwnAdditionBeforeFeed: as TestUIDCommandOnOwnAdditionBeforeFeed, for the
// commands that search: a session APPENDs to its selected mailbox while its change feed is
// held up past the wait for it, then searches in a way whose answer can name the message it
// has the UID of (APPENDUID, RFC 4315 3). Each answer must name it, or be NO [UNAVAILABLE]
// while the feed is still held; before the fix each answered OK from the view and missed
// it. Searches whose criteria confine them to the view, and SEARCH by sequence number,
// are answered at once.
func TestSearchOnOwnAdditionBeforeFeed(t *testing.T) {
	cases := []struct {
		command string // NEW stands for the new message's UID
		want    string // in an untagged response, NEW the UID
	}{
		{"UID SEARCH ALL", "* SEARCH 1 NEW"},
		{"UID SEARCH UID NEW", "* SEARCH NEW"},
		{"UID SEARCH OR UID 1 UID NEW:*", "* SEARCH 1 NEW"},
		{"SEARCH UID NEW", "* SEARCH 2"}, // its number after its EXISTS
		{"UID SEARCH RETURN (MAX COUNT) ALL", "MAX NEW COUNT 2"},
		{"SEARCH RETURN (SAVE) UID NEW", ""}, // then UID SEARCH UID $ below
		{"UID SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT NEW 1"},
		{"UID SORT RETURN (ALL) (ARRIVAL) UTF-8 UID *", "ALL NEW"},
		{"UID THREAD ORDEREDSUBJECT UTF-8 ALL", "(NEW)"},
		{"ESEARCH IN (selected) ALL", "UID ALL 1:NEW"}, // RFC 7377: UIDs always
	}
	// selectAndAppend starts a server with one message in INBOX, selects it and APPENDs a
	// second with the feed held; it returns the session and the new UID.
	selectAndAppend := func(t *testing.T) (*feedGate, *rawConn, string) {
		g, _, rc := selectWithHeldFeed(t)
		return g, rc, strconv.FormatUint(uint64(appendOneUID(t, rc)), 10)
	}
	// search sends tc's command and reports whether its answer is OK and names the new
	// message, with the answer.
	search := func(rc *rawConn, command, want, newUID string) (found bool, tagged string, untagged []string) {
		untagged, tagged = rc.cmd(strings.ReplaceAll(command, "NEW", newUID))
		want = strings.ReplaceAll(want, "NEW", newUID)
		if strings.Contains(command, "SAVE") && strings.HasPrefix(tagged, "OK") {
			untagged, tagged = rc.cmd("UID SEARCH UID $")
			want = "* SEARCH " + newUID
		}
		return strings.HasPrefix(tagged, "OK") && contains(untagged, want), tagged, untagged
	}

	// The feed still held: each answer names the message or is NO [UNAVAILABLE] (the
	// wait for the feed gave up). One session for all: each finds the view still
	// lacking the message.
	t.Run("held", func(t *testing.T) {
		_, rc, newUID := selectAndAppend(t)
		for _, tc := range cases {
			if found, tagged, untagged := search(rc, tc.command, tc.want, newUID); !found && !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
				t.Errorf("%s: answered %q, untagged %q: want OK with %q, or NO [UNAVAILABLE]", tc.command, tagged, untagged, tc.want)
			}
		}
	})
	// The feed released as the search starts: each must name the message.
	for _, tc := range cases {
		t.Run("released-during/"+tc.command, func(t *testing.T) {
			g, rc, newUID := selectAndAppend(t)
			open := func(string) { g.open() }
			g.onCommand.Store(&open)
			if found, tagged, untagged := search(rc, tc.command, tc.want, newUID); !found {
				t.Errorf("answered %q, untagged %q: want OK with %q", tagged, untagged, tc.want)
			}
		})
	}

	// Searches that cannot name the new message: answered from the view at once, the feed
	// still held (a NO [UNAVAILABLE] would be a failure here).
	_, rc, _ := selectAndAppend(t)
	for _, command := range []string{"UID SEARCH UID 1", "SEARCH ALL", "UID SEARCH 1:*", "UID SEARCH OR UID 1 1", "UID SORT (ARRIVAL) UTF-8 UID 1"} {
		if untagged, tagged := rc.cmd(command); !strings.HasPrefix(tagged, "OK") || !contains(untagged, " 1") {
			t.Errorf("%s while the feed is held: %q, untagged %q; want OK naming message 1", command, tagged, untagged)
		}
	}
}
