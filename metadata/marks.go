package metadata

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Delivery marks (issue 12): small records of an account that delivery keeps for Sieve's
// vacation response tracking (RFC 5230 4.2, RFC 6131 2: no second response to a sender
// with the same handle within the period) and duplicate test (RFC 7352 3: has a message
// with this unique ID been delivered within the period). A mark is an opaque key the caller
// namespaces by kind, when it was made (set, the caller's time) and when it expires. The
// caller checks marks while the script runs (CheckMarks, a read) and sets them once the
// delivery succeeded or the response went out (SetMarks, a command), as RFC 7352 3 wants
// for duplicate IDs.
//
// Keys (see keys.go):
//
//	'f' account 0x00 key              -> MarkRecord
//	'g' account 0x00 expires-at, key  -> empty (the account's marks by expiry, for eviction)
//	'h' expires-at, account 0x00 key  -> empty (all marks by expiry, for pruning)
//	'i' account                       -> uint64 the account's number of marks
//	'0' "mark-floor"                  -> int64 every mark expiring before it is pruned
//
// Bounded state: a key has at most maxMarkKey bytes; an account at most maxMarksPerAccount
// marks, a new one beyond that evicts the account's mark that expires first; a mark expires
// at most maxMarkLifetime after the log time of the command that set it. Every command
// drops up to markPruneBatch marks that expired at or before the retry horizon (apply.go
// retryEntries: so every replica drops the same ones, doc.go "Determinism"). An account's
// marks go with it.
//
// The expiry comes in the command, in the caller's time, cut to the lifetime by log time;
// the FSM reads no clock, and CheckMarks compares expiries with the caller's time. Marks
// are dropped by the retry horizon, not by log time, because a leader whose clock is ahead
// moves log time past marks the caller holds alive: dropping them would answer the next
// duplicate test (RFC 7352) "not seen" and let a duplicate in, or send a second vacation
// response (RFC 5230 4.2). A mark that expires at or before it is set, or at or before the
// retry horizon, is not stored (it removes the key's mark), so every stored mark expires
// after the prune floor.
const (
	prefixMark           = 'f'
	prefixMarkAccountAge = 'g'
	prefixMarkAge        = 'h'
	prefixMarkCount      = 'i'
	maxMarkKey           = 64
	maxMarksPerRequest   = 256
	maxMarksPerAccount   = 10000
	maxMarkLifetime      = 400 * 24 * time.Hour
	markPruneBatch       = 64
)

var keyMarkFloor = []byte("0mark-floor")

func markPrefix(account string) []byte { return append(strKey(prefixMark, account), 0) }

func markKey(account string, key []byte) []byte { return append(markPrefix(account), key...) }

func markAccountAgePrefix(account string) []byte {
	return append(strKey(prefixMarkAccountAge, account), 0)
}

func markAccountAgeKey(account string, expires int64, key []byte) []byte {
	return append(binary.BigEndian.AppendUint64(markAccountAgePrefix(account), uint64(expires)), key...)
}

func markAgeKey(expires int64, account string, key []byte) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixMarkAge}, uint64(expires))
	return append(append(append(k, account...), 0), key...)
}

func markCountKey(account string) []byte { return strKey(prefixMarkCount, account) }

// checkMarkKeys validates the keys of a request.
func checkMarkKeys(keys [][]byte) error {
	if len(keys) > maxMarksPerRequest {
		return errInvalid("%d marks in one request: at most %d", len(keys), maxMarksPerRequest)
	}
	for i, k := range keys {
		if len(k) == 0 || len(k) > maxMarkKey {
			return errInvalid("mark key %d of %d bytes: from 1 to %d", i, len(k), maxMarkKey)
		}
	}
	return nil
}

func (c *cmdCtx) setMarks(req *metadatapb.SetMarksRequest) (*metadatapb.CommandResult, error) {
	email, valid := NormalizeEmail(req.GetAccount())
	if !valid {
		return nil, errNotFound("account %q not found", req.GetAccount())
	}
	if _, err := c.loadAccount(email); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(req.GetMarks()))
	for i, m := range req.GetMarks() {
		keys[i] = m.GetKey()
	}
	if err := checkMarkKeys(keys); err != nil {
		return nil, err
	}
	nowSeconds := c.now / int64(time.Second)
	horizonSeconds := c.horizon / int64(time.Second)
	lifetime := int64(maxMarkLifetime / time.Second)
	for _, m := range req.GetMarks() {
		if err := c.removeMark(email, m.GetKey()); err != nil {
			return nil, err
		}
		if m.GetExpiresUnix() <= m.GetSetUnix() || m.GetExpiresUnix() <= horizonSeconds {
			continue // already expired: the key's mark is gone
		}
		expires := c.now + int64(maxMarkLifetime)
		if m.GetExpiresUnix()-nowSeconds < lifetime {
			expires = m.GetExpiresUnix() * int64(time.Second)
		}
		count, err := c.markCount(email)
		if err != nil {
			return nil, err
		}
		if count >= maxMarksPerAccount {
			if err := c.evictMark(email); err != nil {
				return nil, err
			}
		}
		c.tx.setProto(markKey(email, m.GetKey()), &metadatapb.MarkRecord{SetUnix: m.GetSetUnix(), ExpiresUnixNano: expires})
		c.tx.mustSet(markAccountAgeKey(email, expires, m.GetKey()), nil)
		c.tx.mustSet(markAgeKey(expires, email, m.GetKey()), nil)
		if err := c.addMarkCount(email, 1); err != nil {
			return nil, err
		}
	}
	return okResult(), nil
}

func (c *cmdCtx) markCount(account string) (uint64, error) {
	v, _, err := getRaw(c.tx, markCountKey(account))
	return decodeUint64(v), err
}

func (c *cmdCtx) addMarkCount(account string, delta int) error {
	n, err := c.markCount(account)
	if err != nil {
		return err
	}
	n = uint64(int64(n) + int64(delta))
	if n == 0 {
		c.tx.mustDelete(markCountKey(account))
	} else {
		c.tx.mustSet(markCountKey(account), encodeUint64(n))
	}
	return nil
}

// removeMark deletes the account's mark of key and its index entries, if it has one.
func (c *cmdCtx) removeMark(account string, key []byte) error {
	rec := &metadatapb.MarkRecord{}
	found, err := getProto(c.tx, markKey(account, key), rec)
	if err != nil || !found {
		return err
	}
	c.tx.mustDelete(markKey(account, key))
	c.tx.mustDelete(markAccountAgeKey(account, rec.GetExpiresUnixNano(), key))
	c.tx.mustDelete(markAgeKey(rec.GetExpiresUnixNano(), account, key))
	return c.addMarkCount(account, -1)
}

// evictMark removes the account's mark that expires first.
func (c *cmdCtx) evictMark(account string) error {
	prefix := markAccountAgePrefix(account)
	var first []byte
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		first = append([]byte(nil), k[len(prefix)+8:]...)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("evict mark: %w", err)
	}
	if first == nil {
		return fmt.Errorf("evict mark: account %q counts marks but has none", account)
	}
	return c.removeMark(account, first)
}

// pruneMarks drops up to markPruneBatch marks that expired at or before now (the retry
// horizon),
// scanning from the floor of the last prune so that deleted keys below it are never
// iterated again.
func pruneMarks(tx *txn, now int64) error {
	c := &cmdCtx{tx: tx, now: now}
	return pruneExpired(tx, "prune marks", prefixMarkAge, keyMarkFloor, &tx.memo.marks, now, markPruneBatch, func(ageKey []byte, account string, key []byte, expires int64) error {
		rec := &metadatapb.MarkRecord{}
		if found, err := getProto(tx, markKey(account, key), rec); err != nil {
			return err
		} else if !found || rec.GetExpiresUnixNano() != expires {
			return fmt.Errorf("prune marks: index entry %x has no mark", ageKey)
		}
		return c.removeMark(account, key)
	})
}

// forgetMarks drops the marks of a deleted account.
func (c *cmdCtx) forgetMarks(account string) error {
	prefix := markPrefix(account)
	var keys [][]byte
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		keys = append(keys, append([]byte(nil), k[len(prefix):]...))
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("forget marks of %q: %w", account, err)
	}
	for _, key := range keys {
		if err := c.removeMark(account, key); err != nil {
			return err
		}
	}
	return nil
}

// checkMarks answers CheckMarks from a view.
func (v *view) checkMarks(req *metadatapb.CheckMarksRequest) (*metadatapb.CheckMarksResponse, error) {
	email, valid := NormalizeEmail(req.GetAccount())
	if !valid {
		return nil, errNotFound("account %q not found", req.GetAccount())
	}
	if _, found, err := getRaw(v.r, accountKey(email)); err != nil {
		return nil, err
	} else if !found {
		return nil, errNotFound("account %q not found", req.GetAccount())
	}
	if err := checkMarkKeys(req.GetKeys()); err != nil {
		return nil, err
	}
	now := req.GetNowUnix()
	if now == 0 {
		clock, _, err := getRaw(v.r, keyClock)
		if err != nil {
			return nil, err
		}
		now = int64(decodeUint64(clock)) / int64(time.Second)
	}
	resp := &metadatapb.CheckMarksResponse{Marks: make([]*metadatapb.MarkState, len(req.GetKeys()))}
	for i, key := range req.GetKeys() {
		rec := &metadatapb.MarkRecord{}
		found, err := getProto(v.r, markKey(email, key), rec)
		if err != nil {
			return nil, err
		}
		// Seconds, rounded up: a mark expiring within the second now_unix names is
		// still there before it.
		expires := (rec.GetExpiresUnixNano() + int64(time.Second) - 1) / int64(time.Second)
		state := &metadatapb.MarkState{}
		if found && expires > now {
			state = &metadatapb.MarkState{Present: true, SetUnix: rec.GetSetUnix(), ExpiresUnix: expires}
		}
		resp.Marks[i] = state
	}
	return resp, nil
}

// The delivery mark RPCs.

func (s *Service) SetMarks(ctx context.Context, req *metadatapb.SetMarksRequest) (*metadatapb.SetMarksResponse, error) {
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetMarks{SetMarks: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.SetMarksResponse{}, nil
}

func (s *Service) CheckMarks(ctx context.Context, req *metadatapb.CheckMarksRequest) (*metadatapb.CheckMarksResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp, err := v.checkMarks(req)
	if err != nil {
		return nil, readStatus(err)
	}
	return resp, nil
}
