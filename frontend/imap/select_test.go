package imap_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestSelect: the untagged responses of SELECT and EXAMINE. IMAP4rev1 sends FLAGS, EXISTS,
// RECENT and [UNSEEN] with the first unseen message (RFC 3501 6.3.1); IMAP4rev2 drops RECENT
// and UNSEEN and sends LIST with the mailbox name instead (RFC 9051 6.3.2). Both send
// [PERMANENTFLAGS], [UIDVALIDITY] and [UIDNEXT], and MAILBOXID (RFC 8474 4.2).
func TestSelect(t *testing.T) { bothModes(t, testSelect) }

func testSelect(t *testing.T, rev2 bool) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("a", "a"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("b", "b"))
	rc := loginRawMode(t, srv, rev2)
	byMode := func(rev1Lines, rev2Lines []string) []string {
		if rev2 {
			return rev2Lines
		}
		return rev1Lines
	}
	ids := func(lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = selectIDs.ReplaceAllString(l, "$1 N]")
		}
		return out
	}
	const flags = `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`
	tail := []string{"* OK [UIDVALIDITY N] UIDs valid", "* OK [UIDNEXT 3] Predicted next UID", "* OK [MAILBOXID N] Ok"}
	// The first SELECT after delivery claims both messages as \Recent (RFC 3501 2.3.2).
	got := ids(rc.ok("SELECT inbox"))
	checkLines(t, "SELECT", got, slices.Concat([]string{
		flags, `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] Flags permitted`, "* 2 EXISTS",
	}, byMode(
		[]string{"* 2 RECENT", "* OK [UNSEEN 2] First unseen message"},
		[]string{`* LIST () "/" INBOX`},
	), tail))
	checkLines(t, "FETCH FLAGS", rc.ok("FETCH 1:* FLAGS"), []string{
		"* 1 FETCH (FLAGS " + recentFlags(rev2, `\Seen`) + ")", "* 2 FETCH (FLAGS " + recentFlags(rev2, "") + ")",
	})
	// EXAMINE closes the selected mailbox first (RFC 9051 6.3.2, RFC 7162 3.2.11); the
	// messages are this session's recent ones no longer, and EXAMINE claims none (RFC 3501
	// 6.3.2).
	untagged, tagged := rc.cmd("EXAMINE INBOX")
	checkLines(t, "EXAMINE", ids(untagged), slices.Concat([]string{
		"* OK [CLOSED] Previous mailbox closed", flags, "* OK [PERMANENTFLAGS ()] Read-only mailbox", "* 2 EXISTS",
	}, byMode(
		[]string{"* 0 RECENT", "* OK [UNSEEN 2] First unseen message"},
		[]string{`* LIST () "/" INBOX`},
	), tail))
	if tagged != "OK [READ-ONLY] EXAMINE completed" {
		t.Errorf("EXAMINE: %q", tagged)
	}
	// The name in LIST is the session's: modified UTF-7 in IMAP4rev1, UTF-8 in IMAP4rev2
	// (RFC 9051 5.1); an empty mailbox has no first unseen message.
	name := byMode([]string{"&AMk-t&AOk-"}, []string{`"Été"`})[0]
	rc.ok("CREATE " + name)
	checkLines(t, "SELECT "+name, linesWith(rc.ok("SELECT "+name), "EXISTS", "RECENT", "UNSEEN", "LIST"), byMode(
		[]string{"* 0 EXISTS", "* 0 RECENT"},
		[]string{"* 0 EXISTS", `* LIST () "/" "Été"`},
	))
}

// selectIDs matches the values of UIDVALIDITY and MAILBOXID, which differ between servers.
var selectIDs = regexp.MustCompile(`(\[UIDVALIDITY|\[MAILBOXID) [^\]]*\]`)
