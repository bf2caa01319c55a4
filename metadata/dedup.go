package metadata

import (
	"encoding/binary"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Deduplication of MTA retries (issue 12). An MTA that loses the reply to a delivery it
// made sends the message again; LMTP gives such a retry the dedup_key of the first
// attempt (a hash of what a retry repeats), and the append that carries it checks, in the
// same command that would add the message, whether the account stored that key within the
// window: then it adds nothing and answers the earlier append (AppendResponse.duplicate).
// The request ID table cannot do this: a retry over a new connection is a new request.
//
// Keys (see keys.go):
//
//	'd' account 0x00 dedup key         -> DedupRecord (the append, and when it expires)
//	'e' expires-at, account 0x00 key   -> empty (the records by expiry, for pruning)
//	'0' "dedup-floor"                  -> int64 every record expiring before it is pruned
//
// A record expires once the retry horizon (apply.go retryEntries) has passed the end of its
// window: its window in log time, and then retryEntries to 2*retryEntries more log entries.
// So a leader's clock that jumps ahead, moving log time past the window at once, does not
// cut short the window of an append whose 250 the MTA lost: its retry, within those
// entries, still finds the record. The price is that a key is remembered those entries
// longer than its window; the key holds the body hash, so only the same delivery repeats
// it.
//
// Bounded state: every command drops up to dedupPruneBatch expired records, oldest
// first (so every replica drops the same ones: doc.go "Determinism"), and an append stores
// at most one record, so expired records never pile up; a record lives at most its window
// (at most maxDedupWindow) plus 2*retryEntries entries plus the time until the next
// commands get to it. The account's records go with it.
const (
	prefixDedup     = 'd'
	prefixDedupAge  = 'e'
	maxDedupKey     = 128
	dedupPruneBatch = 64
)

var keyDedupFloor = []byte("0dedup-floor")

func dedupPrefix(account string) []byte { return append(strKey(prefixDedup, account), 0) }

func dedupKey(account string, key []byte) []byte { return append(dedupPrefix(account), key...) }

func dedupAgeKey(expires int64, account string, key []byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixDedupAge}, uint64(expires))
	return append(append(append(k, account...), 0), key...)
}

// checkDedup validates an append's dedup key and returns its window.
func checkDedup(req *metadatapb.AppendRequest) (time.Duration, error) {
	if len(req.GetDedupKey()) > maxDedupKey {
		return 0, errInvalid("dedup key of %d bytes: at most %d", len(req.GetDedupKey()), maxDedupKey)
	}
	window := time.Duration(req.GetDedupWindowSeconds()) * time.Second
	if window > maxDedupWindow {
		return 0, errInvalid("dedup window %s: at most %s", window, maxDedupWindow)
	}
	if window == 0 {
		window = defaultDedupWindow
	}
	return window, nil
}

// duplicateAppend returns the earlier append of the account with the dedup key, if it is
// remembered and has not expired (its window ends after the retry horizon).
func (c *cmdCtx) duplicateAppend(account string, key []byte) (*metadatapb.AppendResponse, error) {
	rec := &metadatapb.DedupRecord{}
	found, err := getProto(c.tx, dedupKey(account, key), rec)
	if err != nil || !found || rec.GetExpiresUnixNano() <= c.horizon {
		return nil, err
	}
	resp := &metadatapb.AppendResponse{
		UidValidity: rec.GetUidValidity(), Uids: rec.GetUids(), Modseq: rec.GetModseq(),
		Duplicate: true, MailboxId: rec.GetMailboxId(),
	}
	if resp.BlobEpoch, err = c.blobEpoch(); err != nil {
		return nil, err
	}
	return resp, nil
}

// rememberAppend records an append under its dedup key for window, replacing an expired
// record of the same key.
func (c *cmdCtx) rememberAppend(account string, key []byte, window time.Duration, mailbox uint64, resp *metadatapb.AppendResponse) error {
	old := &metadatapb.DedupRecord{}
	if found, err := getProto(c.tx, dedupKey(account, key), old); err != nil {
		return err
	} else if found {
		c.tx.mustDelete(dedupAgeKey(old.GetExpiresUnixNano(), account, key))
	}
	expires := c.now + int64(window)
	c.tx.setProto(dedupKey(account, key), &metadatapb.DedupRecord{
		ExpiresUnixNano: expires, MailboxId: mailbox, UidValidity: resp.GetUidValidity(),
		Uids: resp.GetUids(), Modseq: resp.GetModseq(),
	})
	c.tx.mustSet(dedupAgeKey(expires, account, key), nil)
	return nil
}

// pruneDedup drops up to dedupPruneBatch records whose window ended at or before now (the
// retry horizon), scanning from the floor of the last prune so that deleted keys below it
// are never iterated again.
func pruneDedup(tx *txn, now int64) error {
	return pruneExpired(tx, "prune dedup keys", prefixDedupAge, keyDedupFloor, &tx.memo.dedup, now, dedupPruneBatch, func(ageKey []byte, account string, key []byte, expires int64) error {
		tx.mustDelete(ageKey)
		rec := &metadatapb.DedupRecord{}
		if found, err := getProto(tx, dedupKey(account, key), rec); err != nil {
			return err
		} else if found && rec.GetExpiresUnixNano() == expires {
			tx.mustDelete(dedupKey(account, key))
		}
		return nil
	})
}

// forgetDedup drops the dedup records of a deleted account.
func (c *cmdCtx) forgetDedup(account string) error {
	prefix := dedupPrefix(account)
	var keys [][]byte
	var expiries []int64
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		rec := &metadatapb.DedupRecord{}
		if err := proto.Unmarshal(v, rec); err != nil {
			return false, fmt.Errorf("decode dedup record %q: %w", k, err)
		}
		keys = append(keys, append([]byte(nil), k[len(prefix):]...))
		expiries = append(expiries, rec.GetExpiresUnixNano())
		return true, nil
	})
	if err != nil {
		return err
	}
	for i, key := range keys {
		c.tx.mustDelete(dedupKey(account, key))
		c.tx.mustDelete(dedupAgeKey(expiries[i], account, key))
	}
	return nil
}
