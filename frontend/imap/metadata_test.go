package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
)

// wantLines checks the untagged responses of a command that must succeed.
func (rc *rawConn) wantLines(line string, want ...string) {
	rc.t.Helper()
	if got := rc.ok(line); !slices.Equal(got, want) {
		rc.t.Fatalf("%s:\n got %q\nwant %q", line, got, want)
	}
}

func TestMetadataCapabilities(t *testing.T) {
	srv := startServer(t)
	caps := strings.Join(loginRaw(t, srv).ok("CAPABILITY"), " ") + " "
	// RFC 5464 1: METADATA for server and mailbox entries, METADATA-SERVER for the server's.
	for _, want := range []string{" METADATA ", " METADATA-SERVER "} {
		if !strings.Contains(caps, want) {
			t.Errorf("CAPABILITY %q lacks %q", caps, want)
		}
	}
}

// TestMetadataServer: server entries (RFC 5464 3.2.1.1), the administrator's URI from the
// configuration, read-only; NIL for an entry without a value; DEPTH below /shared and
// /private.
func TestMetadataServer(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.AdminURI = "mailto:postmaster@example.com" })
	rc := loginRaw(t, srv)
	rc.wantLines(`GETMETADATA "" /shared/comment`, `* METADATA "" (/shared/comment NIL)`)
	rc.ok(`SETMETADATA "" (/shared/comment "Back at 10:00" /private/vendor/acme/motd "seen")`)
	rc.wantLines(`GETMETADATA "" /shared/comment`, `* METADATA "" (/shared/comment "Back at 10:00")`)
	rc.wantLines(`GETMETADATA "" (/shared/admin /Private/Vendor/Acme/MOTD)`,
		`* METADATA "" (/shared/admin "mailto:postmaster@example.com" /private/vendor/acme/motd "seen")`)
	rc.wantLines(`GETMETADATA (DEPTH infinity) "" (/shared /private)`,
		`* METADATA "" (/shared/admin "mailto:postmaster@example.com" /shared/comment "Back at 10:00" /private/vendor/acme/motd "seen")`)
	// A vendor prefix holds no value of its own (RFC 5464 3.2): no NIL for it.
	rc.wantLines(`GETMETADATA (DEPTH 1) "" /private/vendor`)
	rc.wantLines(`GETMETADATA (DEPTH 1) "" /private/vendor/acme`, `* METADATA "" (/private/vendor/acme/motd "seen")`)
	// RFC 5464 3.2.1.1: /shared/admin is read-only.
	rc.expect(`SETMETADATA "" (/shared/admin "mailto:me@example.com")`, "NO [NOPERM]")
	rc.ok(`SETMETADATA "" (/shared/comment NIL)`)
	rc.wantLines(`GETMETADATA "" /shared/comment`, `* METADATA "" (/shared/comment NIL)`)

	// Without a configured URI there is no /shared/admin.
	plain := loginRaw(t, startServer(t))
	plain.wantLines(`GETMETADATA "" /shared/admin`, `* METADATA "" (/shared/admin NIL)`)
}

// TestMetadataMailbox: private and shared entries of a mailbox (RFC 5464 3.2.1.2), values as
// quoted strings, literals and literal8, NIL removing, DEPTH 0, 1 and infinity (4.2.2).
func TestMetadataMailbox(t *testing.T) {
	rc := loginRaw(t, startServer(t))
	// RFC 5464 4.3, the multi-line example, sent as a synchronising literal.
	rc.writeExpect("s1 SETMETADATA INBOX (/private/comment {33}\r\n", "+ ")
	rc.write("My new comment across\r\ntwo lines.)\r\n")
	if _, tagged := rc.until("s1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SETMETADATA with a literal: %s", tagged)
	}
	rc.wantLines(`GETMETADATA "INBOX" /private/comment`, "* METADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines.)")
	rc.ok(`SETMETADATA inbox (/private/comment "My \"own\" comment" /shared/comment "Its sunny outside!" /shared/empty "")`)
	rc.wantLines(`GETMETADATA "INBOX" (/shared/comment /private/comment /shared/empty /shared/none)`,
		`* METADATA INBOX (/shared/comment "Its sunny outside!" /private/comment "My \"own\" comment" /shared/empty "" /shared/none NIL)`)

	// Binary data comes in and goes out as a literal8 (RFC 5464 5: value = nstring / literal8).
	rc.write("s2 SETMETADATA INBOX (/private/vendor/acme/blob ~{3+}\r\na\x00b)\r\n")
	if _, tagged := rc.until("s2"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SETMETADATA with a literal8: %s", tagged)
	}
	rc.wantLines(`GETMETADATA INBOX /private/vendor/acme/blob`, "* METADATA INBOX (/private/vendor/acme/blob ~{3}\r\na\x00b)")

	rc.ok(`SETMETADATA INBOX (/private/filters/values/small "SMALLER 5000" /private/filters/values/boss "FROM \"boss@example.com\"" /private/filters/values/boss/deep "x")`)
	rc.wantLines(`GETMETADATA INBOX (DEPTH 0) /private/filters/values`, `* METADATA INBOX (/private/filters/values NIL)`)
	// RFC 5464 4.2.2's example: the children, not the grandchildren.
	rc.wantLines(`GETMETADATA "INBOX" (DEPTH 1) (/private/filters/values)`,
		`* METADATA INBOX (/private/filters/values NIL /private/filters/values/boss "FROM \"boss@example.com\"" /private/filters/values/small "SMALLER 5000")`)
	rc.wantLines(`GETMETADATA (DEPTH infinity) INBOX /private/filters`,
		`* METADATA INBOX (/private/filters NIL /private/filters/values/boss "FROM \"boss@example.com\"" /private/filters/values/boss/deep "x" /private/filters/values/small "SMALLER 5000")`)
	// NIL removes; removing an entry that is not there is fine.
	rc.ok(`SETMETADATA INBOX (/private/comment NIL /private/never NIL)`)
	rc.wantLines(`GETMETADATA INBOX /private/comment`, `* METADATA INBOX (/private/comment NIL)`)

	// RFC 5464 3.2: invalid names are BAD; a mailbox that does not exist is NO.
	rc.expect(`GETMETADATA INBOX /comment`, "BAD")
	rc.expect(`GETMETADATA INBOX "/private/*"`, "BAD")
	rc.expect(`SETMETADATA INBOX (/private "x")`, "BAD")
	rc.expect(`SETMETADATA INBOX (/shared/vendor/acme "x")`, "BAD")
	rc.expect(`SETMETADATA INBOX (/private/a/ "x")`, "BAD")
	rc.expect(`GETMETADATA Nowhere /private/comment`, "NO [NONEXISTENT]")
	rc.expect(`SETMETADATA Nowhere (/private/comment "x")`, "NO [NONEXISTENT]")
	rc.expect(`GETMETADATA "Other Users" /private/comment`, "NO [NONEXISTENT]")
}

// TestMetadataMaxSize: MAXSIZE leaves larger values out, with OK [METADATA LONGENTRIES n]
// giving the largest (RFC 5464 4.2.1).
func TestMetadataMaxSize(t *testing.T) {
	rc := loginRaw(t, startServer(t))
	long := strings.Repeat("x", 2199)
	rc.ok(fmt.Sprintf("SETMETADATA INBOX (/shared/comment {%d+}\r\n%s /private/comment \"My own comment\")", len(long), long))
	untagged, tagged := rc.cmd(`GETMETADATA "INBOX" (MAXSIZE 1024) (/shared/comment /private/comment)`)
	if want := []string{`* METADATA INBOX (/private/comment "My own comment")`}; !slices.Equal(untagged, want) || !strings.HasPrefix(tagged, "OK [METADATA LONGENTRIES 2199] ") {
		t.Fatalf("MAXSIZE 1024: %q %q", untagged, tagged)
	}
	// Everything too long: no METADATA response at all.
	untagged, tagged = rc.cmd(`GETMETADATA (MAXSIZE 3) INBOX (/shared/comment /private/comment)`)
	if len(untagged) != 0 || !strings.HasPrefix(tagged, "OK [METADATA LONGENTRIES 2199] ") {
		t.Fatalf("MAXSIZE 3: %q %q", untagged, tagged)
	}
	untagged, tagged = rc.cmd(`GETMETADATA (MAXSIZE 2199) INBOX /shared/comment`)
	if len(untagged) != 1 || tagged != "OK GETMETADATA completed" {
		t.Fatalf("MAXSIZE 2199: %q %q", untagged, tagged)
	}
}

// TestMetadataLimits: SETMETADATA refused with NO [METADATA MAXSIZE n] for a value too large,
// and NO [METADATA TOOMANY] past the count of entries (RFC 5464 4.3), changing nothing.
func TestMetadataLimits(t *testing.T) {
	rc := loginRaw(t, startServer(t))
	big := strings.Repeat("x", 20000)
	rc.write(fmt.Sprintf("m1 SETMETADATA INBOX (/private/small \"s\" /private/big {%d+}\r\n%s)\r\n", len(big), big))
	if _, tagged := rc.until("m1"); !strings.HasPrefix(tagged, "NO [METADATA MAXSIZE 16384] ") {
		t.Fatalf("20000 octets: %s", tagged)
	}
	rc.wantLines(`GETMETADATA INBOX /private/small`, `* METADATA INBOX (/private/small NIL)`)
	// A literal longer than any the engine reads gets the same answer, without the data.
	rc.write("m2 SETMETADATA INBOX (/private/big {70000}\r\n")
	if _, tagged := rc.until("m2"); !strings.HasPrefix(tagged, "NO [METADATA MAXSIZE 16384] ") {
		t.Fatalf("70000 octets: %s", tagged)
	}
	rc.ok(fmt.Sprintf("SETMETADATA INBOX (/private/big {16384+}\r\n%s)", big[:16384]))

	// 1000 entries per account: 999 more fit, then no more.
	var pairs []string
	for i := range 999 {
		pairs = append(pairs, fmt.Sprintf("/private/n%d \"\"", i))
	}
	rc.ok(`SETMETADATA "" (` + strings.Join(pairs, " ") + `)`)
	rc.expect(`SETMETADATA Trash (/shared/comment "one too many")`, "NO [METADATA TOOMANY]")
	// Replacing a value is no new entry; removing one makes room.
	rc.ok(`SETMETADATA INBOX (/private/big "smaller")`)
	rc.ok(`SETMETADATA "" (/private/n0 NIL)`)
	rc.ok(`SETMETADATA Trash (/shared/comment "fits")`)
}

// TestMetadataShared: on a mailbox shared with another user, shared entries are common and
// private ones each user's own (RFC 5464 3.2); both need l and one of r, s, w, i, p (RFC
// 5464 3.3); a mailbox the user may not see is missing (RFC 4314 6).
func TestMetadataShared(t *testing.T) {
	srv, a, b := teamFixture(t)
	a.ok(`SETMETADATA Team (/shared/comment "team notes" /private/comment "alice's")`)
	b.expect(`GETMETADATA `+team+` /shared/comment`, "NO [NONEXISTENT]")
	grant(a, "l")
	b.expect(`GETMETADATA `+team+` /shared/comment`, "NO [NOPERM]")
	b.expect(`SETMETADATA `+team+` (/private/comment "bob's")`, "NO [NOPERM]")
	grant(a, "lr")
	b.wantLines(`GETMETADATA `+team+` (/shared/comment /private/comment)`,
		`* METADATA "Other Users/alice@example.com/Team" (/shared/comment "team notes" /private/comment NIL)`)
	b.ok(`SETMETADATA ` + team + ` (/private/comment "bob's" /shared/comment "bob was here")`)
	b.wantLines(`GETMETADATA (DEPTH infinity) `+team+` (/private /shared)`,
		`* METADATA "Other Users/alice@example.com/Team" (/private/comment "bob's" /shared/comment "bob was here")`)
	a.wantLines(`GETMETADATA (DEPTH infinity) Team (/private /shared)`,
		`* METADATA Team (/private/comment "alice's" /shared/comment "bob was here")`)
	grant(a, "li") // a drop box: i is enough
	b.ok(`SETMETADATA ` + team + ` (/private/comment NIL)`)

	// Server entries: the tenant's shared ones are common, private ones each user's own, and
	// another tenant sees neither.
	a.ok(`SETMETADATA "" (/shared/comment "example.com news" /private/comment "alice's server note")`)
	b.wantLines(`GETMETADATA (DEPTH infinity) "" (/shared /private)`, `* METADATA "" (/shared/comment "example.com news")`)
	e := loginRawAs(t, srv, eve)
	e.wantLines(`GETMETADATA (DEPTH infinity) "" (/shared /private)`)
	e.expect(`GETMETADATA "Other Users/alice@example.com/Team" /shared/comment`, "NO [NONEXISTENT]")
}

// TestMetadataMailboxLifetime: entries follow RENAME and go with DELETE (RFC 5464 4.1), so a
// new mailbox of the same name starts without them.
func TestMetadataMailboxLifetime(t *testing.T) {
	rc := loginRaw(t, startServer(t))
	rc.ok("CREATE Projects")
	rc.ok(`SETMETADATA Projects (/shared/comment "active" /private/comment "mine")`)
	rc.ok("RENAME Projects Archive/Projects")
	rc.wantLines(`GETMETADATA Archive/Projects (/shared/comment /private/comment)`,
		`* METADATA Archive/Projects (/shared/comment "active" /private/comment "mine")`)
	rc.ok("DELETE Archive/Projects")
	rc.ok("CREATE Archive/Projects")
	rc.wantLines(`GETMETADATA (DEPTH infinity) Archive/Projects (/shared /private)`)
	// RENAME of INBOX keeps INBOX's entries and copies them to the new mailbox.
	rc.ok(`SETMETADATA INBOX (/private/comment "inbox")`)
	rc.ok("RENAME INBOX Old")
	for _, mailbox := range []string{"INBOX", "Old"} {
		rc.wantLines(`GETMETADATA `+mailbox+` /private/comment`, `* METADATA `+mailbox+` (/private/comment "inbox")`)
	}
}

// TestMetadataSpecialUse: /private/specialuse is the mailbox's special-use attribute (RFC
// 6154 4), checked as CREATE checks USE, and what LIST shows.
func TestMetadataSpecialUse(t *testing.T) {
	_, a, b := teamFixture(t)
	a.wantLines(`GETMETADATA Junk /private/specialuse`, `* METADATA Junk (/private/specialuse "\\Junk")`)
	a.wantLines(`GETMETADATA Team /private/specialuse`, `* METADATA Team (/private/specialuse NIL)`)
	a.ok(`SETMETADATA Team (/private/specialuse "\\archive")`)
	if got := a.ok(`LIST "" Team RETURN (SPECIAL-USE)`); !contains(got, `\Archive`) {
		t.Fatalf("LIST after SETMETADATA /private/specialuse: %q", got)
	}
	a.expect(`SETMETADATA Team (/private/specialuse "\\All")`, "NO [USEATTR]")
	a.expect(`SETMETADATA Team (/private/specialuse "\\Junk \\Trash")`, "NO [USEATTR]")
	grant(a, "lr")
	b.wantLines(`GETMETADATA `+team+` /private/specialuse`, `* METADATA "Other Users/alice@example.com/Team" (/private/specialuse "\\Archive")`)
	b.expect(`SETMETADATA `+team+` (/private/specialuse NIL)`, "NO [NOPERM]")
	a.ok(`SETMETADATA Team (/private/specialuse NIL)`)
	if got := a.ok(`LIST "" Team RETURN (SPECIAL-USE)`); contains(got, `\Archive`) {
		t.Fatalf("LIST after removing the special use: %q", got)
	}
}
