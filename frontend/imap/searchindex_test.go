package imap_test

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/message/mailtext"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// mailboxOf returns the stored state of the demo account's mailbox name.
func mailboxOf(t testing.TB, srv *embedded.Server, account, name string) *metadatapb.Mailbox {
	t.Helper()
	mb, err := srv.Metadata().GetMailbox(context.Background(), &metadatapb.GetMailboxRequest{Account: account, Name: name})
	if err != nil {
		t.Fatalf("get mailbox %s: %v", name, err)
	}
	return mb
}

// waitIndexed waits until the search index has caught up with the mailbox: every UID
// indexed and every expunge applied.
func waitIndexed(t testing.TB, srv *embedded.Server, account, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		mb := mailboxOf(t, srv, account, name)
		done, st, err := srv.SearchIndex().CaughtUp(account, mb)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("index of %s never caught up: state %+v, mailbox uidnext %d modseq %d", name, st, mb.GetUidNext(), mb.GetHighestModseq())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appendCorpus appends n corpus messages to INBOX of c.
func appendCorpus(t testing.TB, c *imapclient.Client, n int) [][]byte {
	t.Helper()
	corpus := bench.Corpus{Seed: 17, MaxSize: 64 << 10}
	msgs := make([][]byte, n)
	for i := range n {
		msgs[i] = corpus.Message(0, i)
		appendMessage(t, c, "INBOX", string(msgs[i]))
	}
	return msgs
}

// searchUIDs runs UID SEARCH crit.
func searchUIDs(t testing.TB, c *imapclient.Client, crit *imap.SearchCriteria) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(crit, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH %+v: %v", crit, err)
	}
	return data.AllUIDs()
}

// needles picks substrings of the corpus: of raw messages at random offsets (ASCII and
// raw UTF-8, sometimes base64 or quoted-printable: those match only where decoding keeps
// them), of decoded subjects and sender names (RFC 2047 words, multi-byte), each also
// with its case changed.
func needles(t testing.TB, c *imapclient.Client, msgs [][]byte, r *rand.Rand, n int) []string {
	t.Helper()
	fetched, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range fetched {
		texts = append(texts, m.Envelope.Subject)
		for _, a := range m.Envelope.From {
			texts = append(texts, a.Name, a.Addr())
		}
	}
	var out []string
	for len(out) < n {
		var s string
		if r.IntN(2) == 0 {
			s = runeSubstring(texts[r.IntN(len(texts))], r)
		} else {
			m := msgs[r.IntN(len(msgs))]
			at := r.IntN(len(m))
			s = runeSubstring(string(m[at:min(len(m), at+200)]), r)
		}
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\r\n\"\\") {
			continue
		}
		switch r.IntN(3) {
		case 0:
			s = strings.ToUpper(s)
		case 1:
			s = strings.ToLower(s)
		}
		out = append(out, s)
	}
	return out
}

// runeSubstring returns a substring of s on rune boundaries, 1 to 12 runes long.
func runeSubstring(s string, r *rand.Rand) string {
	runes := []rune(strings.ToValidUTF8(s, ""))
	if len(runes) == 0 {
		return ""
	}
	start := r.IntN(len(runes))
	end := min(len(runes), start+1+r.IntN(12))
	return string(runes[start:end])
}

// textCriteria returns one search of each text key for needle.
func textCriteria(needle string) []*imap.SearchCriteria {
	return []*imap.SearchCriteria{
		{Body: []string{needle}},
		{Text: []string{needle}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: needle}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: needle}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: needle}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "Cc", Value: needle}}},
		{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: needle}}},
		{Body: []string{needle}, Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: needle}}}}},
	}
}

// TestSearchIndexMatchesScan: on the generated corpus (RFC 2047 and raw UTF-8 headers,
// base64 and quoted-printable parts), SEARCH answers through the index are those of a
// server without one, for many random substrings, multi-byte and case-changed ones
// among them; and the index does narrow the search. The indexer took the appended bodies
// from memory (embedded.Server.RecentBodies), not from the blob store, and their records
// from the APPENDs, not from FetchMessages.
func TestSearchIndexMatchesScan(t *testing.T) {
	const n = 150
	indexed := startServer(t)
	scanned := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	ci, cs := login(t, indexed), login(t, scanned)
	msgs := appendCorpus(t, ci, n)
	appendCorpus(t, cs, n)
	for _, c := range []*imapclient.Client{ci, cs} {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, indexed, embedded.DemoAccount, "INBOX")
	if kept, taken := indexed.RecentBodies().Counts(); taken == 0 || taken > kept {
		t.Errorf("the indexer took %d of %d bodies kept in memory; want some", taken, kept)
	}
	if kept, taken := indexed.RecentBodies().RecordCounts(); taken == 0 || taken > kept {
		t.Errorf("the indexer took %d of %d records the APPENDs handed over; want some", taken, kept)
	}

	r := rand.New(rand.NewPCG(17, 6203))
	list := append(needles(t, ci, msgs, r, 60), "report", "RÉUNION", "müller", "ΕΛΛΗΝΙΚΆ", "会議", "zzqx-nothing", "=?UTF-8?")
	multiByte := 0
	for _, needle := range list {
		if utf8.RuneCountInString(needle) != len(needle) {
			multiByte++
		}
		for _, crit := range textCriteria(needle) {
			got, want := searchUIDs(t, ci, crit), searchUIDs(t, cs, crit)
			if !slices.Equal(got, want) {
				t.Errorf("UID SEARCH %+v with the index = %v, full scan = %v", crit, got, want)
			}
		}
	}
	if multiByte == 0 {
		t.Errorf("no multi-byte needle among %q", list)
	}

	// The index narrows: a word of few messages has fewer candidates than messages. And a
	// word of most messages comes back as a bitmap (uid_bitmap), which the answers above
	// for "report" read.
	mb := mailboxOf(t, indexed, embedded.DemoAccount, "INBOX")
	resp, err := indexed.Metadata().SearchText(context.Background(), &metadatapb.SearchTextRequest{
		Account: embedded.DemoAccount, MailboxId: mb.GetId(),
		Queries: []*metadatapb.SearchTextQuery{
			{Needle: mailtext.Fold("RÉUNION"), Scopes: []metadatapb.SearchScope{metadatapb.SearchScope_SEARCH_SCOPE_SUBJECT}},
			{Needle: mailtext.Fold("report"), Scopes: []metadatapb.SearchScope{metadatapb.SearchScope_SEARCH_SCOPE_BODY}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetIndexed() || resp.GetResults()[0].GetLastUid() != n || candidateCount(resp.GetResults()[0]) >= n {
		t.Fatalf("SearchText = %v; want indexed, last UID %d, fewer candidates than messages", resp, n)
	}
	if common := resp.GetResults()[1]; len(common.GetUidBitmap()) == 0 || candidateCount(common) < n/2 {
		t.Fatalf("SearchText BODY report = %v; want most of %d messages, as a bitmap", common, n)
	}
}

// candidateCount counts the candidates at or below the last UID of an index result.
func candidateCount(r *metadatapb.SearchTextResult) int {
	n := len(r.GetUids())
	for _, b := range r.GetUidBitmap() {
		n += bits.OnesCount8(b)
	}
	return n
}

// TestSearchIndexFollowsChanges: expunges, moves and the deletion of an account reach the
// index through the change feed, and answers stay those of a full scan.
func TestSearchIndexFollowsChanges(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for i := range 30 {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("needle%02d alpha", i), fmt.Sprintf("body haystack%02d", i)))
	}
	if err := c.Create("Filed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	candidates := func(name, needle string) []uint32 {
		t.Helper()
		mb := mailboxOf(t, srv, embedded.DemoAccount, name)
		resp, err := srv.Metadata().SearchText(context.Background(), &metadatapb.SearchTextRequest{Account: embedded.DemoAccount, MailboxId: mb.GetId(),
			Queries: []*metadatapb.SearchTextQuery{{Needle: needle, Scopes: []metadatapb.SearchScope{metadatapb.SearchScope_SEARCH_SCOPE_SUBJECT}}}})
		if err != nil || !resp.GetIndexed() {
			t.Fatalf("SearchText %s %q = %v, %v", name, needle, resp, err)
		}
		return resp.GetResults()[0].GetUids()
	}
	if got := candidates("INBOX", "NEEDLE0"); len(got) != 10 {
		t.Fatalf("candidates of NEEDLE0 = %v, want the 10 UIDs 1 to 10", got)
	}

	// Expunge UIDs 1 to 5, move 6 to 10 to Filed.
	if err := c.Store(imap.UIDSetNum(1, 2, 3, 4, 5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(6, 7, 8, 9, 10), "Filed").Wait(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	waitIndexed(t, srv, embedded.DemoAccount, "Filed")
	if got := candidates("INBOX", "NEEDLE0"); len(got) != 0 {
		t.Errorf("INBOX candidates of NEEDLE0 after expunge and move = %v, want none", got)
	}
	if got := candidates("Filed", "NEEDLE0"); !slices.Equal(got, []uint32{1, 2, 3, 4, 5}) {
		t.Errorf("Filed candidates of NEEDLE0 = %v, want 1:5", got)
	}
	if got := searchUIDs(t, c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "needle1"}}}); !slices.Equal(got, []imap.UID{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}) {
		t.Errorf("SEARCH SUBJECT needle1 = %v", got)
	}

	// Deleting the account drops its index.
	c.Logout().Wait()
	if _, err := srv.Metadata().DeleteAccount(context.Background(), &metadatapb.DeleteAccountRequest{RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		accounts, err := srv.SearchIndex().Index().Accounts()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(accounts, embedded.DemoAccount) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index still holds %s after its deletion: %v", embedded.DemoAccount, accounts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSearchIndexIgnoresFlagChanges: the indexer follows the change feed incrementally.
// Flag changes are not indexed text, so STORE costs it no call to the metadata service;
// an expunge costs one (the vanished UIDs since its last sync), an append one (the new
// records), and neither compares the whole mailbox with the index.
func TestSearchIndexIgnoresFlagChanges(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for i := range 20 {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("flagged%02d", i), "body text"))
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// Every mailbox, not only INBOX: the catch-up at start compares each of them whole,
	// which must be over before the counting starts.
	list, err := srv.Metadata().ListMailboxes(context.Background(), &metadatapb.ListMailboxesRequest{Account: embedded.DemoAccount})
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range list.GetMailboxes() {
		if !mb.GetNoselect() {
			waitIndexed(t, srv, embedded.DemoAccount, mb.GetName())
		}
	}
	ix := srv.SearchIndex()
	before := ix.Stats()
	for _, store := range []*imap.StoreFlags{
		{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}},
		{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "$Label1"}},
		{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagFlagged}},
	} {
		if err := c.Store(imap.UIDSetNum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), store, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX") // the flag changes were seen
	after := ix.Stats()
	if after.Ignored < before.Ignored+3 || after.MetadataCalls != before.MetadataCalls || after.FullSyncs != before.FullSyncs ||
		after.Incremental != before.Incremental || after.Fetched != before.Fetched {
		t.Fatalf("three STOREs: indexer stats went from %+v to %+v, want 3 more ignored changes and nothing else", before, after)
	}

	before = after
	if err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	after = ix.Stats()
	if after.MetadataCalls != before.MetadataCalls+1 || after.FullSyncs != before.FullSyncs || after.Fetched != before.Fetched {
		t.Fatalf("STORE \\Deleted and EXPUNGE: indexer stats went from %+v to %+v, want one metadata call (the vanished UIDs)", before, after)
	}

	before = after
	appendMessage(t, c, "INBOX", testMessage("flagged20", "body text"))
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	after = ix.Stats()
	if after.MetadataCalls != before.MetadataCalls+1 || after.FullSyncs != before.FullSyncs || after.Fetched != before.Fetched+1 {
		t.Fatalf("APPEND: indexer stats went from %+v to %+v, want one metadata call reading one record", before, after)
	}
	if got := searchUIDs(t, c, &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "flagged0"}}}); !slices.Equal(got, []imap.UID{1, 2, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("SEARCH SUBJECT flagged0 = %v, want 1:2,4:10", got)
	}
}

// TestSearchIndexRestartAndRebuild: the index survives a restart (its state is there
// before any new change), and a rebuild from the stored messages reports its progress and
// answers as before.
func TestSearchIndexRestartAndRebuild(t *testing.T) {
	dir := t.TempDir()
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dir })
	c := login(t, srv)
	msgs := appendCorpus(t, c, 40)
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 30))
	list := needles(t, c, msgs, r, 10)
	answers := map[string][]imap.UID{}
	for _, needle := range list {
		answers[needle] = searchUIDs(t, c, &imap.SearchCriteria{Text: []string{needle}})
	}
	mailbox := mailboxOf(t, srv, embedded.DemoAccount, "INBOX").GetId()
	before, _, err := srv.SearchIndex().Index().State(embedded.DemoAccount, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv = startServerWith(t, func(cfg *embedded.Config) { cfg.DataDir = dir })
	after, ok, err := srv.SearchIndex().Index().State(embedded.DemoAccount, mailbox)
	// The catch-up after the restart may have moved the synced MODSEQ (appends followed
	// from the feed leave it where it was), nothing else.
	if err != nil || !ok || after.ModSeq < before.ModSeq {
		t.Fatalf("index state after restart = %+v, %v, %v; want %+v", after, ok, err, before)
	}
	after.ModSeq = before.ModSeq
	if after != before {
		t.Fatalf("index state after restart = %+v; want %+v but for the MODSEQ", after, before)
	}
	stream, err := srv.Metadata().RebuildSearchIndex(context.Background(), &metadatapb.RebuildSearchIndexRequest{Account: embedded.DemoAccount})
	if err != nil {
		t.Fatal(err)
	}
	var last *metadatapb.RebuildSearchIndexProgress
	for {
		p, err := stream.Recv()
		if err != nil {
			if !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("rebuild: %v", err)
			}
			break
		}
		last = p
	}
	if last == nil || last.GetDone() != 40 || last.GetTotal() != 40 {
		t.Fatalf("last rebuild progress = %v, want 40 of 40", last)
	}
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	c = login(t, srv)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range list {
		if got := searchUIDs(t, c, &imap.SearchCriteria{Text: []string{needle}}); !slices.Equal(got, answers[needle]) {
			t.Errorf("SEARCH TEXT %q after restart and rebuild = %v, before = %v", needle, got, answers[needle])
		}
	}
}

// TestSearchLimit: a BODY search that would read more bodies than the bound is refused NO
// [LIMIT] (RFC 5530 3) up front, and one the index narrows under the bound answers, as
// does one the index answers exactly from its words without reading a body (a needle
// within one word), while white space alone narrows nothing; a scan past the search
// deadline ends NO [LIMIT] too.
func TestSearchLimit(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.MaxBodyScan = 3 })
	c := login(t, srv)
	for i := range 6 {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("subject %d", i), fmt.Sprintf("common words and unique%d", i)))
	}
	c.Logout().Wait()
	waitIndexed(t, srv, embedded.DemoAccount, "INBOX")
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.expect(`UID SEARCH BODY "common words"`, "NO [LIMIT] SEARCH would read 6 message bodies, more than this server allows (3); use a longer word")
	rc.expect(`UID SEARCH BODY " "`, "NO [LIMIT] SEARCH would read 6 message bodies, more than this server allows (3); use a longer word")
	for _, word := range []string{"co", "MO"} {
		if got := rc.ok("UID SEARCH BODY " + word); !contains(got, "* SEARCH 1 2 3 4 5 6") {
			t.Errorf("UID SEARCH BODY %s (answered by the index's words) = %q", word, got)
		}
	}
	if got := rc.ok("UID SEARCH BODY unique4"); !contains(got, "* SEARCH 5") {
		t.Errorf("UID SEARCH BODY unique4 = %q", got)
	}

	slow := startServerWith(t, func(cfg *embedded.Config) { cfg.IMAPLimits.SearchTimeout = time.Nanosecond })
	c = login(t, slow)
	appendMessage(t, c, "INBOX", testMessage("one", "body"))
	c.Logout().Wait()
	rc = loginRaw(t, slow)
	rc.ok("SELECT INBOX")
	rc.expect("SEARCH SUBJECT one", "NO [LIMIT] SEARCH took longer than this server allows; narrow it")
}
