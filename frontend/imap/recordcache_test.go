package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/imap"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/testwait"
)

// countFetches counts the FetchMessages calls of the engine (its "fetch records" test
// point).
func countFetches(t *testing.T) *atomic.Int32 {
	var n atomic.Int32
	imap.SetTestHook(t, func(point string) {
		if point == "fetch records" {
			n.Add(1)
		}
	})
	return &n
}

// TestRecordCache: in the session's own mailbox, the unchanging parts of messages read
// once are answered from the frontend's record cache (issue 14): the same answers, with
// flags from the session's view, and no FetchMessages call; a search for header fields
// keeps the headers trimmed to those fields, which serve the next search of them.
func TestRecordCache(t *testing.T) {
	fetches := countFetches(t)
	// The search index off: once it has caught up, SEARCH HEADER Message-ID looks up only
	// its candidate (one miss, not three), so the counts below would depend on its pace.
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.MetricsListen = "127.0.0.1:0"
		cfg.DisableSearchIndex = true
	})
	c := login(t, srv)
	for _, subject := range []string{"one", "two", "three"} {
		appendMessage(t, c, "INBOX", testMessage(subject, subject))
	}
	c.Logout()
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	// ask runs a command twice: the second answer is the first's, with no fetch.
	ask := func(line string, wantFetches int32) []string {
		t.Helper()
		before := fetches.Load()
		first := rc.ok(line)
		if n := fetches.Load() - before; n != wantFetches {
			t.Errorf("%s: %d record fetches, want %d", line, n, wantFetches)
		}
		before = fetches.Load()
		if again := rc.ok(line); !slices.Equal(again, first) {
			t.Errorf("%s again: %q, first %q", line, again, first)
		}
		if n := fetches.Load() - before; n != 0 {
			t.Errorf("%s again: %d record fetches, want 0", line, n)
		}
		return first
	}
	ask("FETCH 1:3 (ENVELOPE)", 1)
	ask("FETCH 2:3 (ENVELOPE)", 0)
	rc.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`)
	got := ask("FETCH 2 (FLAGS ENVELOPE)", 0)
	if len(got) != 1 || !strings.Contains(got[0], `FLAGS (\Flagged \Recent)`) {
		t.Errorf("FETCH 2 (FLAGS ENVELOPE) after STORE: %q, want the new flags", got)
	}
	if got := ask("SEARCH SUBJECT two", 1); !slices.Equal(got, []string{"* SEARCH 2"}) {
		t.Errorf("SEARCH SUBJECT two: %q", got)
	}
	if got := ask(`SEARCH HEADER Subject three`, 0); !slices.Equal(got, []string{"* SEARCH 3"}) {
		t.Errorf("SEARCH HEADER Subject three: %q", got)
	}
	if got := ask(`SEARCH HEADER Message-ID three@`, 1); !slices.Equal(got, []string{"* SEARCH 3"}) {
		t.Errorf("SEARCH HEADER Message-ID three@: %q", got)
	}
	ask("FETCH 1 (RFC822.SIZE BODY.PEEK[])", 1)
	ask("FETCH 1:3 (BODYSTRUCTURE)", 1)
	value, _ := embeddedtest.Scrape(t, srv.MetricsAddr())
	// Misses: 3 envelopes, 3 Subject headers, 3 Message-ID headers, 1 body record, 3
	// structures; every other lookup hit.
	if misses := value(`strata_imap_record_cache_lookups_total{result="miss"}`); misses != 13 {
		t.Errorf("%v record cache misses, want 13", misses)
	}
	if hits := value(`strata_imap_record_cache_lookups_total{result="hit"}`); hits < 10 {
		t.Errorf("%v record cache hits, want 10 or more", hits)
	}
	if held := value(`strata_imap_record_cache_bytes`); held <= 0 {
		t.Errorf("record cache holds %v bytes", held)
	}
}

// TestRecordCacheNotInOthersMailboxes: a session in another owner's mailbox reads every
// record from the metadata service, which checks its rights each time (RFC 4314 4).
func TestRecordCacheNotInOthersMailboxes(t *testing.T) {
	fetches := countFetches(t)
	_, a, b := teamFixture(t)
	grant(a, "lr")
	b.ok("SELECT " + team)
	before := fetches.Load()
	b.ok("FETCH 1 (ENVELOPE)")
	b.ok("FETCH 1 (ENVELOPE)")
	if n := fetches.Load() - before; n != 2 {
		t.Errorf("%d record fetches for two FETCH ENVELOPE in another owner's mailbox, want 2", n)
	}
	a.ok("SETACL Team " + bob + " l")
	b.writeExpect("n FETCH 1 (ENVELOPE)\r\n", "* BYE ")
}

// TestRecordCacheExpungeHeldBack: a message expunged by another session, whose EXPUNGE the
// session cannot be told of during FETCH (RFC 9051 7.5.1), is fetched with no data once the
// expunge reached the session, as the metadata service answers, though its record is in
// the cache; NOOP then reports the EXPUNGE.
func TestRecordCacheExpungeHeldBack(t *testing.T) {
	srv, c := startWithInbox(t, "one", "two", "three")
	c.Logout()
	a := loginRaw(t, srv)
	a.ok("SELECT INBOX")
	if got := a.ok("FETCH 2 (ENVELOPE)"); len(got) != 1 {
		t.Fatalf("FETCH 2 (ENVELOPE): %q", got)
	}
	b := loginRaw(t, srv)
	b.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	testwait.Until(t, 5*time.Second, func() error {
		for _, l := range a.ok("FETCH 2 (ENVELOPE)") {
			if strings.Contains(l, "ENVELOPE") {
				return fmt.Errorf("FETCH of the expunged message still answers: %q", l)
			}
		}
		return nil
	})
	okWith(t, a, "NOOP", "* 2 EXPUNGE")
}
