package frontend_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestSearch(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("alpha", "the quick brown fox"), imap.FlagSeen)
	appendMessage(t, c, "INBOX", testMessage("beta", "jumps over"), imap.FlagFlagged)
	appendMessage(t, c, "INBOX", testMessage("gamma", "the lazy dog"))
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	for query, want := range map[string]string{
		"SEARCH ALL":                          "* SEARCH 1 2 3", // imaplib's default
		"SEARCH UNSEEN":                       "* SEARCH 2 3",
		"SEARCH SEEN":                         "* SEARCH 1",
		"SEARCH FLAGGED UNSEEN":               "* SEARCH 2",
		"SEARCH NOT FLAGGED":                  "* SEARCH 1 3",
		"SEARCH OR SEEN FLAGGED":              "* SEARCH 1 2",
		"SEARCH 2:*":                          "* SEARCH 2 3",
		"UID SEARCH UID 1,3":                  "* SEARCH 1 3",
		"SEARCH SUBJECT beta":                 "* SEARCH 2",
		"SEARCH FROM alice@example.org":       "* SEARCH 1 2 3",
		"SEARCH HEADER Message-ID gamma":      "* SEARCH 3",
		"SEARCH BODY lazy":                    "* SEARCH 3",
		"SEARCH TEXT QUICK":                   "* SEARCH 1",
		"SEARCH LARGER 1000000":               "* SEARCH",
		"SEARCH SENTON 7-Feb-1994":            "* SEARCH 1 2 3",
		"SEARCH SINCE 1-Jan-2000 NOT DELETED": "* SEARCH 1 2 3",
		"SEARCH CHARSET UTF-8 (KEYWORD $X)":   "* SEARCH",
	} {
		if got := rc.ok(query); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", query, got, want)
		}
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

	// imapclient's SEARCH (it uses ESEARCH with IMAP4rev2 servers).
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
