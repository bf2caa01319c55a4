package imap_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// A BODY needle sent as a 64 KiB literal of non-UTF-8 bytes folds to 192 KiB (each byte
// becomes U+FFFD), so FoldedContains keeps more than the 64 KiB fold window: on a message
// with a body over 64 KiB (a long word, so the index lists it as a candidate to verify),
// FoldChunks sliced past its window and panicked (before 7c896e3 it spun forever); its
// window now grows with the needle, and the search answers OK, no match (review of
// idxfold22).
func TestSearchNeedleBeyondFoldWindow(t *testing.T) {
	for _, indexed := range []bool{true, false} {
		t.Run(fmt.Sprintf("index=%v", indexed), func(t *testing.T) {
			srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = !indexed })
			c := login(t, srv)
			appendMessage(t, c, "INBOX", "From: a@example.org\r\nSubject: big\r\n\r\n"+strings.Repeat("a", 70000)+"\r\n")
			c.Close()
			if indexed {
				waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
			}
			rc := loginRaw(t, srv)
			rc.ok("SELECT INBOX")
			needle := strings.Repeat("\xff", 64<<10)
			rc.readTimeout = 20 * time.Second
			untagged, tagged := rc.cmd(fmt.Sprintf("UID SEARCH BODY {%d+}\r\n%s", len(needle), needle))
			t.Logf("untagged %q tagged %q", untagged, tagged)
			if !strings.HasPrefix(tagged, "OK") {
				t.Errorf("UID SEARCH BODY <64 KiB of 0xFF>: %q", tagged)
			}
		})
	}
}

// A data directory filled with the index off and opened with it on (the new `strata
// serve` default) indexes the mail already there and answers as a scan does.
func TestIndexTurnedOnOverOldDataDir(t *testing.T) {
	dir := t.TempDir()
	off := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dir; cfg.DisableSearchIndex = true })
	c := login(t, off)
	for i := range 5 {
		appendMessage(t, c, "INBOX", fmt.Sprintf("From: a@example.org\r\nSubject: zebra%d quarterly\r\n\r\nbody giraffe%d text\r\n", i, i))
	}
	c.Close()
	off.Close()
	on := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dir })
	waitIndexed(t, on, embedded.DemoAccount, "INBOX")
	rc := loginRaw(t, on)
	rc.ok("SELECT INBOX")
	for _, q := range []string{"BODY giraffe3", "SUBJECT zebra2", "TEXT quarterly", "FUZZY BODY giraffe"} {
		untagged, tagged := rc.cmd("UID SEARCH " + q)
		t.Logf("%s: %q %q", q, untagged, tagged)
		if !strings.HasPrefix(tagged, "OK") {
			t.Errorf("%s: %q", q, tagged)
		}
	}
}
