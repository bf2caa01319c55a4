package imap_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
)

// fuzzyInbox starts a server (edit changes its configuration), appends three messages to
// the demo INBOX, waits for the index when it is on, and returns a raw session with INBOX
// selected.
func fuzzyInbox(t *testing.T, edit func(*embedded.Config)) *rawConn {
	t.Helper()
	srv := startServerWith(t, edit)
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("Quarterly budget review", "the meeting about the budget"))
	appendMessage(t, c, "INBOX", testMessage("Lunch plans", "pizza or sushi"))
	appendMessage(t, c, "INBOX", testMessage("Budget approved", "the quarterly numbers"))
	if srv.SearchIndex() != nil {
		waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	}
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	return rc
}

// TestFuzzySearch: SEARCH=FUZZY (RFC 6203) with the index: a misspelt SUBJECT or BODY
// matches, with RELEVANCY below 100; exact matches keep 100; FUZZY combines with other keys.
func TestFuzzySearch(t *testing.T) {
	rc := fuzzyInbox(t, func(*embedded.Config) {})
	if caps := rc.ok("CAPABILITY"); !strings.Contains(caps[0], " SEARCH=FUZZY") {
		t.Fatalf("CAPABILITY %q lacks SEARCH=FUZZY", caps)
	}
	for _, tc := range []struct{ cmd, want string }{
		// "quartely" holds 4 of its 6 trigrams in "quarterly" (fuzzy.go): relevancy 66.
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT "quartely"`, ` UID ALL 1 RELEVANCY (66)`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY BODY sushy`, ` UID ALL 2 RELEVANCY (66)`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY TEXT quartely`, ` UID ALL 1,3 RELEVANCY (66 66)`},
		// Exact matches are fuzzy matches, relevancy 100 (RFC 6203 4: 100 is the highest).
		{`UID SEARCH RETURN (RELEVANCY ALL) FUZZY SUBJECT budget`, ` UID RELEVANCY (100 100) ALL 1,3`},
		{`UID SEARCH RETURN (COUNT RELEVANCY) FUZZY SUBJECT quartely FROM alice`, ` UID COUNT 1 RELEVANCY (66)`},
		{`UID SEARCH RETURN (ALL) NOT FUZZY SUBJECT quartely`, ` UID ALL 2:3`},
		{`UID SEARCH RETURN (ALL RELEVANCY) OR FUZZY SUBJECT quartely SUBJECT lunch`, ` UID ALL 1:2 RELEVANCY (100 100)`},
		// Without FUZZY keys every score is 100; without FUZZY the misspelling finds nothing.
		{`UID SEARCH RETURN (ALL RELEVANCY) SUBJECT lunch`, ` UID ALL 2 RELEVANCY (100)`},
		{`UID SEARCH RETURN (ALL RELEVANCY) SUBJECT quartely`, ` UID`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT zzzzzz`, ` UID`},
		// FUZZY over a key that is not a text key is that key.
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY UNSEEN FUZZY SUBJECT lunchh`, ` UID ALL 2 RELEVANCY (75)`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY SEEN FUZZY SUBJECT lunchh`, ` UID`},
	} {
		got := rc.ok(tc.cmd)
		want := fmt.Sprintf(`* ESEARCH (TAG "x%d")%s`, rc.n, tc.want)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, got, want)
		}
	}
	// Without RETURN, the plain SEARCH response (RFC 3501 7.2.5).
	if got := rc.ok(`SEARCH FUZZY SUBJECT quartely`); !slices.Equal(got, []string{"* SEARCH 1"}) {
		t.Errorf("SEARCH FUZZY SUBJECT quartely = %q", got)
	}
	// SORT (RELEVANCY) (RFC 6203 4): the most relevant first; REVERSE the least first.
	if got := rc.ok(`UID SEARCH RETURN (ALL RELEVANCY) FUZZY TEXT "subject: budget"`); !slices.Equal(got, []string{fmt.Sprintf(`* ESEARCH (TAG "x%d") UID ALL 1,3 RELEVANCY (99 100)`, rc.n)}) {
		t.Errorf("FUZZY TEXT \"subject: budget\" = %q", got)
	}
	if got := rc.ok(`UID SORT (RELEVANCY) UTF-8 FUZZY TEXT "subject: budget"`); !slices.Equal(got, []string{"* SORT 3 1"}) {
		t.Errorf("SORT (RELEVANCY) = %q", got)
	}
	if got := rc.ok(`UID SORT (REVERSE RELEVANCY) UTF-8 FUZZY TEXT "subject: budget"`); !slices.Equal(got, []string{"* SORT 1 3"}) {
		t.Errorf("SORT (REVERSE RELEVANCY) = %q", got)
	}
	if got := rc.ok(`UID SORT (RELEVANCY) UTF-8 ALL`); !slices.Equal(got, []string{"* SORT 1 2 3"}) {
		t.Errorf("SORT (RELEVANCY) without FUZZY = %q", got)
	}
	rc.expect(`SEARCH FUZZY`, "BAD")
	rc.expect(`SEARCH RETURN (RELEVANCE) ALL`, "BAD")
}

// TestFuzzyWithoutIndex: with the index off, SEARCH=FUZZY is not announced and a FUZZY key
// matches as the exact key (RFC 6203 3 leaves the matching to the server), relevancy 100,
// rather than BAD: a frontend cannot know, before asking, whether the index holds a mailbox.
func TestFuzzyWithoutIndex(t *testing.T) {
	rc := fuzzyInbox(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	if caps := rc.ok("CAPABILITY"); strings.Contains(caps[0], "FUZZY") {
		t.Fatalf("CAPABILITY %q announces FUZZY without the index", caps)
	}
	for _, tc := range []struct{ cmd, want string }{
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT quartely`, ` UID`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT quarterly`, ` UID ALL 1 RELEVANCY (100)`},
		{`UID SEARCH RETURN (ALL RELEVANCY) FUZZY BODY budget`, ` UID ALL 1 RELEVANCY (100)`},
	} {
		got := rc.ok(tc.cmd)
		want := fmt.Sprintf(`* ESEARCH (TAG "x%d")%s`, rc.n, tc.want)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, got, want)
		}
	}
}

// TestFuzzyHoldsExactMatches: on the bench corpus (RFC 2047 and raw UTF-8 headers, base64
// and quoted-printable bodies), every message a SUBJECT, FROM, BODY or TEXT key finds, its
// FUZZY form finds too, with relevancy 100.
func TestFuzzyHoldsExactMatches(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	msgs := appendCorpus(t, c, 60)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	r := rand.New(rand.NewPCG(6203, 3))
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	search := func(key, needle string) (uids []string, scores string) {
		t.Helper()
		got := rc.ok(fmt.Sprintf("UID SEARCH RETURN (ALL RELEVANCY) CHARSET UTF-8 %s {%d+}\r\n%s", key, len(needle), needle))
		if len(got) != 1 {
			t.Fatalf("%s %q: %q", key, needle, got)
		}
		fields := strings.Fields(got[0])
		for k, f := range fields {
			if f == "ALL" {
				uids = expandSet(t, fields[k+1])
			}
			if f == "RELEVANCY" {
				scores = strings.Join(fields[k+1:], " ")
			}
		}
		return uids, scores
	}
	found := 0
	for _, needle := range needles(t, c, msgs, r, 40) {
		for _, key := range []string{"SUBJECT", "FROM", "BODY", "TEXT"} {
			exact, _ := search(key, needle)
			found += len(exact)
			fuzzy, scores := search("FUZZY "+key, needle)
			for _, uid := range exact {
				if !slices.Contains(fuzzy, uid) {
					t.Errorf("%s %q finds UID %s, FUZZY %s does not (%v)", key, needle, uid, key, fuzzy)
				}
			}
			for _, s := range strings.Fields(strings.Trim(scores, "()")) {
				var n int
				if _, err := fmt.Sscan(s, &n); err != nil || n < 1 || n > 100 {
					t.Errorf("FUZZY %s %q: relevancy %q out of 1-100", key, needle, s)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no needle found any message: the test checks nothing")
	}
}

// expandSet expands a sequence-set of UIDs ("1:3,7") into its numbers as strings.
func expandSet(t *testing.T, set string) []string {
	t.Helper()
	var out []string
	for _, part := range strings.Split(set, ",") {
		var lo, hi int
		if _, err := fmt.Sscanf(part, "%d:%d", &lo, &hi); err != nil {
			if _, err := fmt.Sscan(part, &lo); err != nil {
				t.Fatalf("bad set %q", set)
			}
			hi = lo
		}
		for n := lo; n <= hi; n++ {
			out = append(out, fmt.Sprint(n))
		}
	}
	return out
}
