package imap_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// The protocol tests of the selected state run twice, as mox runs its tests with and without
// UIDONLY: in an IMAP4rev1 session and in one that sent ENABLE IMAP4rev2 (RFC 9051 6.3.1).
// The two differ where RFC 9051 appendix E lists the changes from IMAP4rev1: SEARCH answers
// ESEARCH (RFC 9051 6.4.4, 7.3.4); \Recent, RECENT and UNSEEN are gone from flag lists and
// SELECT/EXAMINE (RFC 3501 2.3.2, 6.3.1 have them), which sends LIST instead (RFC 9051
// 6.3.2); mailbox names are UTF-8 (RFC 9051 5.1).

// bothModes runs test as the subtests "rev1" and "rev2"; rev2 tells the mode, which the test
// passes to loginRawMode or loginMode and to the expectations that differ.
func bothModes(t *testing.T, test func(t *testing.T, rev2 bool)) {
	t.Helper()
	for _, rev2 := range []bool{false, true} {
		name := "rev1"
		if rev2 {
			name = "rev2"
		}
		t.Run(name, func(t *testing.T) { test(t, rev2) })
	}
}

// loginRawMode is loginRaw followed, in rev2 mode, by ENABLE IMAP4rev2, which the server
// confirms with ENABLED (RFC 5161 3.2).
func loginRawMode(t *testing.T, srv *embedded.Server, rev2 bool) *rawConn {
	t.Helper()
	rc := loginRaw(t, srv)
	if rev2 {
		if got := rc.ok("ENABLE IMAP4rev2"); len(got) != 1 || got[0] != "* ENABLED IMAP4rev2" {
			t.Fatalf("ENABLE IMAP4rev2 = %q", got)
		}
	}
	return rc
}

// loginMode is login followed, in rev2 mode, by ENABLE IMAP4rev2.
func loginMode(t *testing.T, srv *embedded.Server, rev2 bool) *imapclient.Client {
	t.Helper()
	if rev2 {
		return loginUTF8(t, srv)
	}
	return login(t, srv)
}

// recentFlags is the flag list "(flags)" of a message that is \Recent in the session: rev1
// adds \Recent last (RFC 3501 2.3.2), rev2 has no such flag (RFC 9051 appendix E).
func recentFlags(rev2 bool, flags string) string {
	if rev2 {
		return "(" + flags + ")"
	}
	if flags == "" {
		return `(\Recent)`
	}
	return "(" + flags + ` \Recent)`
}

// okSearch sends query, a SEARCH or UID SEARCH without RETURN, and checks that its one
// untagged response is the result nums ("2 3", "" for none) in the session's mode:
// `* SEARCH 2 3` in rev1 (RFC 3501 7.2.5); in rev2 `* ESEARCH (TAG "x7") ALL 2:3`, with UID
// for UID SEARCH and without ALL when nothing matched (RFC 9051 6.4.4, 7.3.4; RFC 4731 3.1).
func (rc *rawConn) okSearch(rev2 bool, query, nums string) {
	rc.t.Helper()
	want := "* SEARCH"
	if nums != "" {
		want += " " + nums
	}
	if rev2 {
		want = `* ESEARCH (TAG "x` + strconv.Itoa(rc.n+1) + `")`
		if len(query) > 4 && strings.EqualFold(query[:4], "UID ") {
			want += " UID"
		}
		if nums != "" {
			want += " ALL " + numSet(rc.t, nums)
		}
	}
	if got := rc.ok(query); len(got) != 1 || got[0] != want {
		rc.t.Errorf("%s = %q, want %q", query, got, want)
	}
}

// numSet renders ascending numbers "1 2 3 5" as the sequence set "1:3,5".
func numSet(t *testing.T, nums string) string {
	t.Helper()
	var set imap.SeqSet
	for _, f := range strings.Fields(nums) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatalf("number %q: %v", f, err)
		}
		set.AddNum(uint32(n))
	}
	return set.String()
}
