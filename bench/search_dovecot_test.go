package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// The differential test of SEARCH (RFC 9051 6.4.4), run by TestSortThreadAgainstDovecot on
// the same mailbox: header, address, BODY and TEXT keys with ASCII, case-changed and
// non-ASCII needles (the corpus holds RFC 2047 B and Q words and raw UTF-8), combined with
// OR, NOT and flags, must find the same sequence numbers on Strata, with its search index
// caught up so that the index narrows every key it can, and on Dovecot, which without an
// FTS plugin (none is configured) scans for substrings as RFC 9051 6.4.4 asks.

// searchQuery is one SEARCH: its keys, and a needle sent as a literal after them (so that
// non-ASCII needles need no quoting), "" for none. With dovecotKeys, Dovecot is known to
// answer the query otherwise than RFC 9051 asks (why), and Strata's answer must be Dovecot's
// to the same needle after dovecotKeys instead.
type searchQuery struct {
	keys, needle     string
	dovecotKeys, why string
}

// differentialSearches are the SEARCH commands both servers answer.
var differentialSearches = func() []searchQuery {
	var q []searchQuery
	add := func(key string, needles ...string) {
		for _, n := range needles {
			q = append(q, searchQuery{keys: key, needle: n})
		}
	}
	add("SUBJECT", SearchWord, strings.ToUpper(SearchWord), "Quarterly Report", "réunion", "RÉUNION", "Müller", "MÜLLER", "straße", "会議", "Ελληνικά", "ΕΛΛΗΝΙΚΆ", "żółw", "re:", "[list]")
	add("FROM", "alice", "ALICE MARTIN", "josé", "ÁLVAREZ", "Петров", "ДМИТРИЙ", "李小龍", "example.org", "noreply@")
	add("TO", "bob", "ZOË", "søren", "example.de")
	add("CC", "carol", "SØREN KIERKEGAARD", "ops team")
	add("BODY", "budget", "KUBERNETES", "réunion", "café", "Straße", "данные", "multi-part")
	add("TEXT", "réunion", "Message-ID", "bench.strata.test", "MX2.EXAMPLE.NET", "Zürich")
	add("HEADER In-Reply-To", "bench.strata")
	add("HEADER Message-ID", "7.1.")
	add("HEADER Received", "ESMTPS")
	add("HEADER Subject", "")
	add("HEADER X-Nowhere", "")
	add("OR FROM alice SUBJECT", "budget")
	add("NOT SUBJECT", SearchWord)
	add("FLAGGED SUBJECT", "review")
	add("UNSEEN OR TO ops BODY", "café")
	add("SEEN NOT FLAGGED FROM", "example.net")
	add("OR (SEEN CC carol) NOT TEXT", "Zürich")
	add("NOT OR BODY budget SUBJECT", "réunion")
	add("OR OR FROM jose TO li@ CC", "müller")
	add("FROM", "neil", "bob o", "\"bob")
	add("HEADER From", "o'neil", "neil")
	// RFC 9051 6.4.4: FROM matches "the specified string in the envelope structure's FROM
	// field", whose name of "\"Bob O'Neil\" <bob@example.net>" is Bob O'Neil: "o'neil" is
	// in it. Dovecot 2.3 finds it with HEADER From but not with FROM (it finds "neil",
	// "bob o" and "\"bob" with both), so Strata must answer what Dovecot's HEADER From does.
	q = append(q, searchQuery{keys: "FROM", needle: "o'neil", dovecotKeys: "HEADER From",
		why: "Dovecot's FROM misses an apostrophe in a quoted display name"})
	return q
}()

// waitSearchIndex waits until the search index of srv holds every message of the demo
// account's mailbox box, so that SEARCH reads its candidates.
func waitSearchIndex(t *testing.T, srv *embedded.Server, box string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Minute); ; {
		mb, err := srv.Metadata().GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: box})
		if err != nil {
			t.Fatal(err)
		}
		done, st, err := srv.SearchIndex().CaughtUp(embedded.DemoAccount, mb)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("search index of %s never caught up: %+v, uidnext %d", box, st, mb.GetUidNext())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// compareSearches sets the same flags on both servers' selected mailbox and compares the
// answers of differentialSearches.
func compareSearches(t *testing.T, srv *embedded.Server, box string, strata, dovecot *rawIMAP) {
	for _, c := range []*rawIMAP{strata, dovecot} {
		c.run(`STORE 1:120 +FLAGS.SILENT (\Seen)`)
		c.run(`STORE 60:250 +FLAGS.SILENT (\Flagged)`)
	}
	waitSearchIndex(t, srv, box)
	for _, q := range differentialSearches {
		cmd := "SEARCH CHARSET UTF-8 " + q.keys
		var got, want string
		if q.needle == "" {
			cmd += ` ""`
			got, want = strata.answer(cmd, "* SEARCH"), dovecot.answer(cmd, "* SEARCH")
		} else {
			dovecotCmd := cmd
			if q.dovecotKeys != "" {
				dovecotCmd = "SEARCH CHARSET UTF-8 " + q.dovecotKeys
			}
			got, want = answerLiteral(strata, cmd, q.needle), answerLiteral(dovecot, dovecotCmd, q.needle)
		}
		if got != want {
			t.Errorf("%s %q (Dovecot asked %q; %s):\nstrata:  %s\ndovecot: %s", cmd, q.needle, q.dovecotKeys, q.why, got, want)
		} else if testing.Verbose() {
			t.Logf("%s %q: %d found", cmd, q.needle, len(strings.Fields(got))-2)
		}
	}
}

// answerLiteral runs cmd with needle as a literal after it and returns its "* SEARCH" line.
func answerLiteral(c *rawIMAP, cmd, needle string) string {
	c.t.Helper()
	for _, l := range c.run(cmd, []byte(needle)) {
		if strings.HasPrefix(l, "* SEARCH") {
			return l
		}
	}
	c.t.Fatalf("%s %q: no * SEARCH response", cmd, needle)
	return ""
}
