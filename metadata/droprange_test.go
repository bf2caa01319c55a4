package metadata

import (
	"bytes"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// batchTxn returns a txn over a new indexed batch of h's store, never committed.
func (h *harness) batchTxn() *txn {
	h.t.Helper()
	g := h.f.acquire()
	b := g.db.NewIndexedBatch()
	tx := newTxn(b, nil)
	h.t.Cleanup(func() {
		tx.close()
		_ = b.Close()
		g.release()
	})
	return tx
}

// TestDropRange: a range dropped under a savepoint stays until the command succeeds, is
// kept whole by a rollback, and once dropped reads as absent through the txn's cache, its
// point reads and its iterators, while the keys around it stay.
func TestDropRange(t *testing.T) {
	tx := newHarness(t).batchTxn()
	start, end := mailboxPrefix(prefixMessageNumber, 7), mailboxPrefixEnd(prefixMessageNumber, 7)
	inside := [][]byte{messageNumberKey(nil, 7, []byte("a@x")), messageNumberKey(nil, 7, []byte("b@x"))}
	outside := [][]byte{messageNumberKey(nil, 6, []byte("a@x")), messageNumberKey(nil, 8, []byte("a@x"))}
	for _, k := range append(append([][]byte{}, inside...), outside...) {
		tx.mustSet(k, []byte{0, 0, 0, 1})
	}
	count := func() (in, out int) {
		t.Helper()
		for _, k := range inside {
			if _, found, err := tx.get(k); err != nil {
				t.Fatal(err)
			} else if found {
				in++
			}
		}
		for _, k := range outside {
			if _, found, _ := tx.get(k); found {
				out++
			}
		}
		err := scan(tx, start, end, func(_, _ []byte) (bool, error) {
			in += 100
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return in, out
	}

	tx.savepoint()
	tx.dropRange(start, end)
	if in, out := count(); in != 202 || out != 2 {
		t.Fatalf("before the command ends: %d, %d keys", in, out)
	}
	tx.rollback()
	if in, out := count(); in != 202 || out != 2 {
		t.Fatalf("after a rollback: %d, %d keys", in, out)
	}

	tx.savepoint()
	tx.dropRange(start, end)
	tx.releaseSavepoint()
	if in, out := count(); in != 0 || out != 2 {
		t.Fatalf("after the command: %d inside (point reads + 100 per scanned), %d outside", in, out)
	}
	// A key written afterwards in the range is there (a later sequence number).
	tx.mustSet(inside[0], []byte{0, 0, 0, 2})
	if v, found, err := tx.get(inside[0]); err != nil || !found || !bytes.Equal(v, []byte{0, 0, 0, 2}) {
		t.Fatalf("written after the drop: %x %v %v", v, found, err)
	}
}

// TestDeleteMailboxDropsColumn: deleting a mailbox, and deleting an account, removes every
// key of their sort-key column (chunks and 'C' entries) and Message-ID dictionary, leaves
// the other mailbox's, and a replica restored from a snapshot has the same store.
func TestDeleteMailboxDropsColumn(t *testing.T) {
	h := withAccount(t)
	h.ok(cmdCreateMailbox(alice, "Gone"))
	h.ok(cmdCreateMailbox(alice, "Kept"))
	gone, kept := h.mustMailbox(alice, "Gone"), h.mustMailbox(alice, "Kept")
	h.fillThreads(gone.GetId(), 300)
	h.fillThreads(kept.GetId(), 50)
	h.stripNumbers(gone.GetId(), 40) // UIDs below 40 in the 'C' layout, no dictionary
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_NumberMessages{NumberMessages: &metadatapb.NumberMessagesCommand{
		Account: alice, MailboxId: gone.GetId(), MaxEntries: 100}}})
	keys := func(mailbox uint64) int {
		t.Helper()
		v := h.f.view()
		defer v.close()
		n := 0
		for _, p := range []byte{prefixSortChunk, prefixMessageNumber, prefixSortColumn} {
			err := scan(v.r, mailboxPrefix(p, mailbox), mailboxPrefixEnd(p, mailbox), func(_, _ []byte) (bool, error) {
				n++
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	keptKeys := keys(kept.GetId())
	if keys(gone.GetId()) < 40+3 || h.dictionarySize(gone.GetId()) == 0 {
		t.Fatal("the mailbox to delete has no 'C' entries or no dictionary")
	}
	h.ok(cmdDeleteMailbox(alice, "Gone"))
	if n := keys(gone.GetId()); n != 0 {
		t.Fatalf("deleted mailbox keeps %d column and dictionary keys", n)
	}
	if n := keys(kept.GetId()); n != keptKeys {
		t.Fatalf("the other mailbox has %d column and dictionary keys, had %d", n, keptKeys)
	}
	h.wantSortColumn()
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs")
	}
	h.ok(cmdDeleteAccount(alice))
	if n := keys(kept.GetId()); n != 0 {
		t.Fatalf("the deleted account's mailbox keeps %d column and dictionary keys", n)
	}
	if !bytes.Equal(h.restored().digest(), h.digest()) {
		t.Fatal("a restored replica's store differs after the account's deletion")
	}
}
