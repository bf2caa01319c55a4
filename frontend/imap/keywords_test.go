package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// TestKeywordAnnouncedBeforeUse: a keyword new to the mailbox reaches every session of it in
// a FLAGS (and PERMANENTFLAGS) response before the first FETCH that carries it (RFC 9051
// 7.3.5, RFC 3501 7.2.6), in the session that sets it and in the others.
func TestKeywordAnnouncedBeforeUse(t *testing.T) {
	srv, c := startWithInbox(t, "a", "b", "c")
	// The appending client selects first and so holds the messages' \Recent (RFC 3501
	// 2.3.2), which keeps it out of the lines below.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	setter, watcher, reader := loginRaw(t, srv), loginRaw(t, srv), loginRaw(t, srv)
	setter.ok("SELECT INBOX")
	watcher.ok("SELECT INBOX")
	reader.ok("EXAMINE INBOX")

	got := setter.ok(`STORE 3 +FLAGS (\Answered $Label3)`)
	want := []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label3)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label3 \*)] Flags permitted`,
		`* 3 FETCH (FLAGS (\Answered $Label3))`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("setter: %q, want %q", got, want)
	}
	// Known keywords are not announced again, whatever their case (RFC 9051 2.3.2).
	if got, want := setter.ok(`STORE 2 +FLAGS ($label3)`), []string{`* 2 FETCH (FLAGS ($label3))`}; !slices.Equal(got, want) {
		t.Errorf("setter, known keyword: %q, want %q", got, want)
	}
	got = watcher.noopUntil("$Label3)")
	if i := firstIndex(got, "FETCH"); i < 0 || firstIndex(got, `* FLAGS (`) < 0 || firstIndex(got, `* FLAGS (`) > i {
		t.Errorf("watcher: FLAGS must come before the FETCH that carries $Label3: %q", got)
	}
	if !contains(got, `$Label3 \*)] Flags permitted`) {
		t.Errorf("watcher lacks the new PERMANENTFLAGS: %q", got)
	}
	got = reader.noopUntil("$Label3)")
	if i := firstIndex(got, "FETCH"); i < 0 || firstIndex(got, `* FLAGS (`) > i || firstIndex(got, `* FLAGS (`) < 0 {
		t.Errorf("read-only session: FLAGS must come before the FETCH: %q", got)
	}
	if contains(got, "PERMANENTFLAGS (\\") {
		t.Errorf("read-only session offered permanent flags: %q", got)
	}

	// A message appended with a new keyword: FLAGS before EXISTS, so a later FETCH FLAGS
	// carries only announced keywords.
	appendMessage(t, c, "INBOX", testMessage("d", "d"), "$Junk")
	got = watcher.noopUntil("EXISTS")
	flagsAt, existsAt := firstIndex(got, `* FLAGS (`), firstIndex(got, "EXISTS")
	if flagsAt < 0 || existsAt < 0 || flagsAt > existsAt || !strings.Contains(got[flagsAt], "$Junk") {
		t.Errorf("append with a new keyword: %q", got)
	}
}

// firstIndex returns the index of the first line containing sub, or -1.
func firstIndex(lines []string, sub string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, sub) })
}
