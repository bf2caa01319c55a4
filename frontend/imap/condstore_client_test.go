package imap_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestCondStoreResyncLoop: go-imap's imapclient as an offline client that keeps a cache of
// UIDs and flags and catches up with CONDSTORE (RFC 7162 3.1, 6): SELECT (CONDSTORE), and
// when HIGHESTMODSEQ moved, UID FETCH 1:* (FLAGS) (CHANGEDSINCE cached) for flag changes and
// UID SEARCH ALL for expunges. Another client changes the mailbox at random between the
// rounds; after every round the cache must equal the mailbox.
func TestCondStoreResyncLoop(t *testing.T) {
	srv := startServer(t)
	writer := login(t, srv)
	appendNumbered(t, writer, 20, nil)
	if _, err := writer.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 7))
	cache := map[imap.UID][]imap.Flag{}
	var cachedModSeq uint64
	keywords := []imap.Flag{imap.FlagSeen, imap.FlagFlagged, "$Label1", "$Junk"}
	for round := range 15 {
		// The writer: flag changes, expunges and new mail.
		if round > 0 {
			for range 1 + rng.IntN(4) {
				uids := writerUIDs(t, writer)
				if len(uids) == 0 {
					break
				}
				uid := uids[rng.IntN(len(uids))]
				op := []imap.StoreFlagsOp{imap.StoreFlagsAdd, imap.StoreFlagsDel, imap.StoreFlagsSet}[rng.IntN(3)]
				flags := &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{keywords[rng.IntN(len(keywords))]}}
				if err := writer.Store(imap.UIDSetNum(uid), flags, nil).Close(); err != nil {
					t.Fatal(err)
				}
			}
			if uids := writerUIDs(t, writer); rng.IntN(2) == 0 && len(uids) > 0 {
				uid := uids[rng.IntN(len(uids))]
				if err := writer.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					t.Fatal(err)
				}
				if err := writer.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
					t.Fatal(err)
				}
			}
			if rng.IntN(3) == 0 {
				appendMessage(t, writer, "INBOX", testMessage(fmt.Sprintf("r%d", round), "x"), keywords[rng.IntN(len(keywords))])
			}
		}

		// The offline client reconnects and resyncs.
		c := login(t, srv)
		sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
		if err != nil {
			t.Fatalf("round %d: SELECT (CONDSTORE): %v", round, err)
		}
		if sel.HighestModSeq == 0 {
			t.Fatalf("round %d: no HIGHESTMODSEQ", round)
		}
		if sel.HighestModSeq != cachedModSeq {
			if sel.HighestModSeq < cachedModSeq {
				t.Fatalf("round %d: HIGHESTMODSEQ went back from %d to %d", round, cachedModSeq, sel.HighestModSeq)
			}
			search, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			present := search.AllUIDs()
			for uid := range cache {
				if !slices.Contains(present, uid) {
					delete(cache, uid)
				}
			}
			opts := &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: cachedModSeq}
			if cachedModSeq == 0 {
				opts.ChangedSince = 0
			}
			msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, opts).Collect()
			if err != nil {
				t.Fatalf("round %d: FETCH CHANGEDSINCE %d: %v", round, cachedModSeq, err)
			}
			for _, m := range msgs {
				if m.ModSeq <= cachedModSeq || m.ModSeq > sel.HighestModSeq {
					t.Errorf("round %d: UID %d has MODSEQ %d outside (%d, %d]", round, m.UID, m.ModSeq, cachedModSeq, sel.HighestModSeq)
				}
				cache[m.UID] = m.Flags
			}
			cachedModSeq = sel.HighestModSeq
		}
		c.Close()

		// The truth, read afresh.
		truth, err := writer.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(truth) != len(cache) {
			t.Fatalf("round %d: cache has %d messages, mailbox %d", round, len(cache), len(truth))
		}
		for _, m := range truth {
			got, ok := cache[m.UID]
			if !ok || !sameFlags(got, m.Flags) {
				t.Fatalf("round %d: UID %d cached %v (present %v), mailbox %v; cache UIDs %v", round, m.UID, got, ok, m.Flags, slices.Sorted(maps.Keys(cache)))
			}
		}
	}
}

func writerUIDs(t *testing.T, c *imapclient.Client) []imap.UID {
	t.Helper()
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return data.AllUIDs()
}

// sameFlags compares flag lists without order and without \Recent, which is per session.
func sameFlags(a, b []imap.Flag) bool {
	notRecent := func(f imap.Flag) bool { return f == `\Recent` }
	a, b = slices.DeleteFunc(slices.Clone(a), notRecent), slices.DeleteFunc(slices.Clone(b), notRecent)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
