package searchindex

import (
	"context"
	"errors"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// SearchText answers the Metadata service's SearchText (metadata.TextIndex) from the
// index: Indexed false when the mailbox has no state here, so the frontend scans.
func (ix *Indexer) SearchText(ctx context.Context, req *metadatapb.SearchTextRequest) (*metadatapb.SearchTextResponse, error) {
	resp := &metadatapb.SearchTextResponse{Indexed: true}
	for _, q := range req.GetQueries() {
		query := Query{Needle: q.GetNeedle()}
		for _, s := range q.GetScopes() {
			query.Scopes = append(query.Scopes, Scope(s))
		}
		var res *Result
		var err error
		if q.GetFuzzy() {
			res, err = ix.idx.Fuzzy(ctx, req.GetAccount(), req.GetMailboxId(), query)
		} else {
			res, err = ix.idx.candidates(ctx, req.GetAccount(), req.GetMailboxId(), query)
		}
		if errors.Is(err, ErrNotIndexed) {
			return &metadatapb.SearchTextResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		out := &metadatapb.SearchTextResult{LastUid: res.LastUID, Scores: res.Scores, Exact: res.Exact, VerifyUids: res.Verify}
		switch {
		case res.UIDs == nil:
			// The exact answer's set: a bitmap written from its containers, or a list.
			if n := res.set.cardinality(); n > 0 && bitmapSmaller(n, res.set.b.Maximum()) {
				out.UidBitmap = res.set.bitmap()
			} else {
				out.Uids = res.set.uids()
			}
		case res.Scores == nil:
			if bitmap := uidBitmap(res.UIDs); bitmap != nil {
				out.UidBitmap = bitmap
			} else {
				out.Uids = res.UIDs
			}
		default:
			out.Uids = res.UIDs
		}
		resp.Results = append(resp.Results, out)
	}
	return resp, nil
}

// Feed is the change feed the indexer follows: the mailboxes whose HIGHESTMODSEQ moved,
// with what changed, and a signal that some were dropped (overflow), after which the
// indexer catches up with everything.
type Feed interface {
	Next(ctx context.Context) (changed []MailboxChange, overflowed bool, err error)
}

// MailboxChange names a mailbox that changed and says how. A change with none of the
// marks set (flags, keywords, a rename, rights) needs no work: none of it is indexed text.
type MailboxChange struct {
	Account string
	Mailbox uint64
	// ModSeq is the mailbox's HIGHESTMODSEQ after the change.
	ModSeq uint64
	// Appended: messages were added (APPEND, COPY, MOVE's target, delivery).
	Appended bool
	// Expunged: messages were removed (EXPUNGE, MOVE's source).
	Expunged bool
	// Reset: the mailbox was created or deleted, or the feed cannot say what changed;
	// the indexer compares the whole mailbox with the index.
	Reset bool
}

// Follow feeds the indexer from feed until ctx ends or the feed fails.
func (ix *Indexer) Follow(ctx context.Context, feed Feed) error {
	for {
		changed, overflowed, err := feed.Next(ctx)
		if err != nil {
			return err
		}
		for _, c := range changed {
			ix.NotifyChange(c)
		}
		if overflowed {
			if err := ix.CatchUp(ctx); err != nil {
				ix.logger.Warn("search index catch-up after overflow", "err", err)
			}
		}
	}
}

// uidBitmap returns ascending uids as SearchTextResult.uid_bitmap when that is smaller
// than their packed varints (at least a byte each), else nil.
func uidBitmap(uids []uint32) []byte {
	if len(uids) == 0 || !bitmapSmaller(len(uids), uids[len(uids)-1]) {
		return nil
	}
	bitmap := make([]byte, uids[len(uids)-1]/8+1)
	for _, uid := range uids {
		bitmap[uid/8] |= 1 << (uid % 8)
	}
	return bitmap
}

// bitmapSmaller reports whether n UIDs up to last take fewer bytes as a bitmap than as a
// list (at least a byte each): at least 64 of them, and no more bytes of bitmap than UIDs.
func bitmapSmaller(n int, last uint32) bool {
	return n >= 64 && int(last/8)+1 <= n
}
