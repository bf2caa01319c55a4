package imap_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPreview: FETCH PREVIEW (RFC 8970) answers the preview made at ingest, with or
// without the LAZY modifier, alone or beside ENVELOPE, and never sets \Seen.
func TestPreview(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("hello", "The quick brown fox jumps over the lazy dog."))
	rc := loginRaw(t, srv)
	if got := rc.ok("CAPABILITY"); !contains(got, " PREVIEW ") {
		t.Errorf("CAPABILITY lacks PREVIEW: %q", got)
	}
	rc.ok("EXAMINE INBOX")
	want := `* 1 FETCH (PREVIEW "The quick brown fox jumps over the lazy dog.")`
	for _, cmd := range []string{"FETCH 1 PREVIEW", "FETCH 1 (PREVIEW (LAZY))", "FETCH 1 (preview (lazy))"} {
		if got := rc.ok(cmd); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	if got := rc.ok("UID FETCH 1 (ENVELOPE PREVIEW FLAGS)"); len(got) != 1 || !strings.Contains(got[0], `"hello"`) || !strings.Contains(got[0], `PREVIEW "The quick brown fox`) || !strings.Contains(got[0], "FLAGS (") {
		t.Errorf("ENVELOPE and PREVIEW: %q", got)
	}
	rc.expect("FETCH 1 (PREVIEW (FUZZY))", "BAD")
}

// TestSaveDate: FETCH SAVEDATE and the SAVED* search keys (RFC 8514): the save date is
// when the message was stored into this mailbox (APPEND, COPY), not its internal date.
func TestSaveDate(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("old", "x")) // internal date: now; Date: 1994
	rc := loginRaw(t, srv)
	if got := rc.ok("CAPABILITY"); !contains(got, " SAVEDATE ") {
		t.Errorf("CAPABILITY lacks SAVEDATE: %q", got)
	}
	// An APPEND with an internal date years ago: its save date is still today.
	msg := testMessage("dated", "y")
	rc.ok(`APPEND INBOX "01-Jan-2001 10:00:00 +0000" {` + itoa(len(msg)) + "+}\r\n" + msg)
	rc.ok("SELECT INBOX")
	got := rc.ok("FETCH 1:2 (SAVEDATE INTERNALDATE)")
	re := regexp.MustCompile(`^\* (\d) FETCH \(SAVEDATE "(\d\d-\w{3}-\d{4}) [0-9:]+ \+0000" INTERNALDATE "([^"]+)"\)$`)
	today := time.Now().UTC().Format("02-Jan-2006")
	for i, l := range got {
		m := re.FindStringSubmatch(l)
		if m == nil || m[2] != today {
			t.Fatalf("FETCH SAVEDATE line %d: %q (today %s)", i, l, today)
		}
	}
	if !strings.Contains(got[1], `INTERNALDATE "01-Jan-2001`) {
		t.Errorf("internal date of the dated message: %q", got[1])
	}
	day := time.Now().UTC().Format("2-Jan-2006")
	for cmd, want := range map[string]string{
		"SEARCH SAVEDON " + day:                  "* SEARCH 1 2",
		"SEARCH SAVEDSINCE " + day:               "* SEARCH 1 2",
		"SEARCH SAVEDBEFORE " + day:              "* SEARCH",
		"SEARCH SAVEDBEFORE 1-Jan-2002":          "* SEARCH",
		"SEARCH BEFORE 1-Jan-2002":               "* SEARCH 2",
		"SEARCH SAVEDATESUPPORTED":               "* SEARCH 1 2",
		"SEARCH NOT SAVEDON " + day:              "* SEARCH",
		"SEARCH OR SAVEDBEFORE 1-Jan-2000 UID 2": "* SEARCH 2",
		`SEARCH HEADER ":SAVEDON" ""`:            "* SEARCH",
	} {
		if got := rc.ok(cmd); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", cmd, got, want)
		}
	}
	// A copy is saved into its mailbox when it is copied.
	rc.ok("CREATE Later")
	rc.ok("COPY 2 Later")
	rc.ok("SELECT Later")
	if got := rc.ok("FETCH 1 SAVEDATE"); len(got) != 1 || !strings.Contains(got[0], today) {
		t.Errorf("SAVEDATE of a copy: %q", got)
	}
}
