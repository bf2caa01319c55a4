package imap_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

func TestStore(t *testing.T) { bothModes(t, testStore) }

func testStore(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	rc := loginRawMode(t, srv, rev2)
	// The first SELECT after delivery: in IMAP4rev1 the messages are \Recent in this
	// session (RFC 3501 2.3.2), and every flag list it sees says so.
	rc.ok("SELECT INBOX")
	rf := func(flags string) string { return recentFlags(rev2, flags) }
	if got, want := rc.ok(`STORE 1:2 +FLAGS (\Seen $Work)`), []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work)`, // RFC 9051 7.3.5: a new keyword is announced first
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Work \*)] Flags permitted`,
		`* 1 FETCH (FLAGS ` + rf(`\Seen $Work`) + `)`, `* 2 FETCH (FLAGS ` + rf(`\Seen $Work`) + `)`,
	}; !slices.Equal(got, want) {
		t.Errorf("+FLAGS: %q, want %q", got, want)
	}
	if got, want := rc.ok(`UID STORE 2 -FLAGS ($Work)`), []string{`* 2 FETCH (UID 2 FLAGS ` + rf(`\Seen`) + `)`}; !slices.Equal(got, want) {
		t.Errorf("UID -FLAGS: %q, want %q", got, want)
	}
	if got := rc.ok(`STORE 3 FLAGS.SILENT (\Flagged \Draft)`); len(got) != 0 {
		t.Errorf(".SILENT answered %q", got)
	}
	if got, want := rc.ok(`FETCH 1:* FLAGS`), []string{`* 1 FETCH (FLAGS ` + rf(`\Seen $Work`) + `)`, `* 2 FETCH (FLAGS ` + rf(`\Seen`) + `)`, `* 3 FETCH (FLAGS ` + rf(`\Flagged \Draft`) + `)`}; !slices.Equal(got, want) {
		t.Errorf("FETCH FLAGS: %q, want %q", got, want)
	}
	if got, want := rc.ok(`STORE * FLAGS ()`), []string{`* 3 FETCH (FLAGS ` + rf("") + `)`}; !slices.Equal(got, want) {
		t.Errorf("FLAGS (): %q, want %q", got, want)
	}
	rc.expect("STORE 4 +FLAGS (\\Seen)", "BAD")
	rc.expect("STORE 1 +FLAGS (\\Seen", "BAD")
}

func TestStoreGrammar(t *testing.T) { bothModes(t, testStoreGrammar) }

func testStoreGrammar(t *testing.T, rev2 bool) {
	srv, _ := startWithInbox(t, "a", "b", "c")
	rc := loginRawMode(t, srv, rev2)
	rf := func(flags string) string { return recentFlags(rev2, flags) }
	// RFC 9051 7.1: PERMANENTFLAGS with \* — clients may create keywords.
	if got := rc.ok("SELECT INBOX"); !contains(got, `\*)] `) {
		t.Errorf("SELECT lacks PERMANENTFLAGS \\*: %q", got)
	}
	check := func(cmd string, want ...string) {
		t.Helper()
		if got := rc.ok(cmd); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	// Reversed ranges, lower-case command and item, a flag without parentheses.
	// The first SELECT after delivery: the messages are \Recent here in IMAP4rev1 (RFC 3501
	// 2.3.2).
	check(`store 3:2 +flags \Answered`, `* 2 FETCH (FLAGS `+rf(`\Answered`)+`)`, `* 3 FETCH (FLAGS `+rf(`\Answered`)+`)`)
	check(`STORE 1 +FLAGS ($Label1 NonJunk)`,
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 NonJunk)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 NonJunk \*)] Flags permitted`,
		`* 1 FETCH (FLAGS `+rf(`$Label1 NonJunk`)+`)`)
	// Keywords are case-insensitive: removing "$label1" removes "$Label1" (RFC 9051 2.3.2).
	check(`STORE 1 -FLAGS ($label1)`, `* 1 FETCH (FLAGS `+rf(`NonJunk`)+`)`)
	// \Recent cannot be stored (RFC 3501 2.3.2): FLAGS neither sets nor clears it; in
	// IMAP4rev2 it is no flag at all (RFC 9051 appendix E) and is ignored the same way.
	check(`STORE 1 FLAGS (\Recent \Seen)`, `* 1 FETCH (FLAGS `+rf(`\Seen`)+`)`)
	check(`STORE 1 -FLAGS (\Recent)`, `* 1 FETCH (FLAGS `+rf(`\Seen`)+`)`)
	// UID STORE responses carry the UID (RFC 9051 6.4.9, 7.5.2), even with a reversed range.
	check(`UID STORE 3:1 -FLAGS.SILENT (\Answered)`)
	check(`UID STORE 2,3 +FLAGS (\Flagged)`, `* 2 FETCH (UID 2 FLAGS `+rf(`\Flagged`)+`)`, `* 3 FETCH (UID 3 FLAGS `+rf(`\Flagged`)+`)`)
	check(`UID STORE 7:9 +FLAGS (\Flagged)`)
	check(`STORE * -FLAGS ()`, `* 3 FETCH (FLAGS `+rf(`\Flagged`)+`)`)
	for _, cmd := range []string{
		`STORE 1 +FLAGS`, `STORE 1 FLAGS.LOUD (\Seen)`, `STORE 0 +FLAGS (\Seen)`, `STORE 1 +FLAGS (\Seen) extra`,
		`STORE 1 +FLAGS (a(b)`, `STORE 1 +FLAGS ("quoted")`, `STORE 1:4 +FLAGS (\Seen)`,
	} {
		rc.expect(cmd, "BAD")
	}
	// Another session sees the change as an unsolicited FETCH (RFC 9051 7.5.2).
	other := loginRawMode(t, srv, rev2)
	other.ok("SELECT INBOX")
	rc.ok(`STORE 2 +FLAGS.SILENT (\Seen)`)
	testwait.Until(t, 5*time.Second, func() error {
		if got := other.ok("NOOP"); !contains(got, `* 2 FETCH (FLAGS (\Seen \Flagged))`) && !contains(got, `* 2 FETCH (FLAGS (\Flagged \Seen))`) {
			return fmt.Errorf("the other session has not seen the STORE: NOOP brought %q", got)
		}
		return nil
	})
	// EXAMINE is read-only (RFC 9051 6.3.3).
	rc.ok("EXAMINE INBOX")
	rc.expect(`STORE 1 +FLAGS (\Seen)`, "NO [READ-ONLY]")
	rc.expect(`UID STORE 1 +FLAGS (\Seen)`, "NO [READ-ONLY]")
}
