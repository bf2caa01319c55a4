package imap_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// TestCommonWordBitmapMatchesScan: SEARCH of a word in most messages (answered by
// the index as a uid_bitmap, read by positionsIn and the all-sure path of bodybits22)
// gives a full scan's answers, with sequence numbers and UIDs, combined with UID and
// sequence ranges, NOT, OR, flags and size, and while the session still sees messages
// another session expunged (the index has applied the expunge).
func TestCommonWordBitmapMatchesScan(t *testing.T) {
	const n = 90
	indexed := startServer(t)
	scanned := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	type pair struct{ a, b *imapclient.Client }
	var sessions [2]pair
	for k, srv := range []*embedded.Server{indexed, scanned} {
		a, b := login(t, srv), login(t, srv)
		for i := range n {
			body := fmt.Sprintf("weekly report number %d", i)
			if i%11 == 5 {
				body = fmt.Sprintf("nothing here %d", i)
			}
			var flags []imap.Flag
			if i%3 == 0 {
				flags = append(flags, imap.FlagSeen)
			}
			appendMessage(t, a, "INBOX", testMessage(fmt.Sprintf("s%d topic", i), body), flags...)
		}
		for _, c := range []*imapclient.Client{a, b} {
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
		}
		sessions[k] = pair{a, b}
	}
	waitIndexed(t, indexed, embedded.DemoAccount, "INBOX")
	// Another session expunges some; A's view keeps them until its next NOOP.
	for _, p := range sessions {
		if err := p.b.Store(imap.UIDSetNum(3, 40, 89, 90), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.b.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, indexed, embedded.DemoAccount, "INBOX")

	report := func(extra imap.SearchCriteria) *imap.SearchCriteria {
		c := extra
		c.Body = append([]string{"report"}, c.Body...)
		return &c
	}
	crits := []*imap.SearchCriteria{
		report(imap.SearchCriteria{}),
		report(imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(10, 11, 12, 13, 40, 41, 88, 89, 90)}}),
		report(imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(1, 2, 3, 4, 5, 6, 40, 89, 90)}}),
		report(imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"number 1"}}}}),
		report(imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}),
		report(imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}),
		report(imap.SearchCriteria{Larger: 10}),
		report(imap.SearchCriteria{Body: []string{"weekly"}}),
		report(imap.SearchCriteria{Text: []string{"topic"}}),
		{Not: []imap.SearchCriteria{{Body: []string{"report"}}}},
		{Or: [][2]imap.SearchCriteria{{{Body: []string{"report"}}, {Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "s5 "}}}}}},
	}
	run := func(label string, uid bool) {
		for _, crit := range crits {
			var got [2][]uint32
			for k, p := range sessions {
				var data *imap.SearchData
				var err error
				if uid {
					data, err = p.a.UIDSearch(crit, nil).Wait()
				} else {
					data, err = p.a.Search(crit, nil).Wait()
				}
				if err != nil {
					t.Fatalf("%s %+v: %v", label, crit, err)
				}
				if uid {
					for _, u := range data.AllUIDs() {
						got[k] = append(got[k], uint32(u))
					}
				} else {
					got[k] = data.AllSeqNums()
				}
			}
			if !slices.Equal(got[0], got[1]) {
				t.Errorf("%s %+v: index %v, full scan %v", label, crit, got[0], got[1])
			}
		}
	}
	run("SEARCH (stale view)", false)
	for _, p := range sessions {
		if err := p.a.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
	}
	run("SEARCH", false)
	run("UID SEARCH", true)

	// Messages above the index's last UID (searched before the indexer's quiet period
	// ends): every one a candidate, verified.
	for _, p := range sessions {
		for i := range 4 {
			body := "late report"
			if i%2 == 1 {
				body = "late nothing"
			}
			appendMessage(t, p.a, "INBOX", testMessage(fmt.Sprintf("late%d", i), body))
		}
		if err := p.a.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
	}
	run("SEARCH (past the index)", false)
	run("UID SEARCH (past the index)", true)
}
