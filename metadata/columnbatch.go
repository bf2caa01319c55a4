package metadata

import "slices"

// Column chunks written once per batch (issue 14). Every command that adds or removes a
// message rewrites whole chunks of up to four columns (the sort-key column and its dates
// subject and thread-keys projections, the listing column: about 30 KiB for a full run of
// sortChunkUIDs messages with their keys), and under many appending clients Raft hands
// the FSM batches in which several commands append to the same mailbox, each rewriting
// the chunks the one before just wrote. So a command's edits of a chunk
// (cmdCtx.columnEdits) do not go into the Pebble batch: once the command has succeeded,
// writeColumns hands them to the txn (editChunk), which folds the edits of all the
// batch's commands of a chunk into one (pendingChunk.fold) and writes the chunk once,
// when the batch commits (writePending), or before anything of the batch reads it: a
// point read of the key (get) or an iterator whose range holds it (NewIter). A range
// deletion forgets the pending edits in its range, as it would remove what they wrote.
//
// The store after the batch is exactly what writing each command's edits at once gives
// (the same keys, the same bytes; columnbatch_test.go applies the same log in batches cut
// differently and compares every key): for a chunk whose records are in strictly
// ascending UID order and take apart (every chunk this code writes), applying one edit
// after another and applying their fold are the same map from UIDs to records
// (pendingChunk.fold), and both are written in UID order. A chunk found otherwise (a
// stored value that does not take apart, written by a bug), or edited with fixed-width
// records (dates, subjects) not in ascending order, is edited at once, command by command, as before. The pending
// edits are written without a trace in the undo log: a command that reads a chunk
// (and so writes it) and then fails leaves the chunk as the earlier commands made it.
//
// Appends as merge operands (issue 14). Most edits only add records above every record
// the chunk holds: the entries of messages that the command gave new UIDs (APPEND, COPY,
// MOVE, import, delivery), at or above the mailbox's UIDNEXT of before the command, which
// no record of the mailbox reaches (a record is written only for a message the mailbox
// holds or held, and UIDNEXT only grows). Such an edit (cmdCtx.writeColumns: no removes,
// its first UID at or above the first UID the command allocated in the mailbox) needs
// neither the chunk's value nor a rewrite of it: editChunk does not read the chunk, and
// writeChunk writes the records as a Pebble merge operand (Batch.Merge). The FSM's store
// has the default merger (pebbleOptions), which concatenates a key's operands after its
// value, so every read of the key (Get, iterators, snapshots, Persist, compactions, and a
// build before this one, which has the same merger) finds exactly the bytes that the
// read, the edit and the Set gave: a chunk's records are concatenated in UID order, with
// no header or count, and editColumnChunk or editFixedChunk of records all above the
// chunk's appends them after it. The logical state is the same, so no feature level. (A
// stored chunk that does not take apart, left by a bug, is the one exception: the edit
// would have cut it at its first broken record, repairing it, while the merge keeps the
// broken bytes and appends after them. Readers of the column, listing and thread-key
// chunks then stop at the break and miss the new records; in a dates or subjects chunk
// whose length is not a multiple of its record width the new records are misaligned and
// read as records of made-up UIDs; the next edit that is not an append cuts at the
// break as before and drops what was merged since. Replicas of this build agree with each
// other; one of the previous build would have repaired the chunk.) A later edit of the batch that is not
// such an append writes the merge first and then reads the chunk as before; an edit that
// is folds into the pending merge. FSM.rewriteAppends turns the merges off (tests compare).

// pendingChunk is the fold of the edits of one chunk that the batch's commands made and
// the batch has not written yet: records to add (a record of a UID replaces the chunk's)
// and UIDs to remove, applied to the chunk as the batch holds it when it is written.
type pendingChunk struct {
	// width is the length of the chunk's records when they have one (the dates
	// projection's, sortdates.go, or the subject projection's, subjectrecords.go), else 0:
	// records of the column's format (UID varint, entry with its length).
	width   int
	adds    []byte   // records, UIDs strictly ascending; the pending chunk's own
	removes []uint32 // UIDs, ascending and distinct
	last    uint32   // the UID of the last record of adds
	// merge: the edit only adds records above every record of the chunk as stored (its
	// value was not read) and goes into the batch as a merge operand (writeChunk).
	merge bool
}

// isColumnChunk reports whether key is a chunk of a column (whose writes a batch folds).
func isColumnChunk(key []byte) bool {
	switch key[0] {
	case prefixSortChunk, prefixSortDates, prefixSubjectRecords, prefixListingChunk, prefixThreadKeys:
		return true
	}
	return false
}

// editChunk applies a succeeded command's edit of the chunk at key: adds (records in
// strictly ascending UID order, whole records of width bytes for a chunk of fixed-width
// records, width 0 for the column's format) and removes (ascending), as editColumnChunk
// or editFixedChunk would, or not at all when the chunk is absent and nothing is added.
// above reports that every UID of adds is above every record of the chunk as stored
// (cmdCtx.writeColumns): an edit with no removes is then an append, folded into a
// pending merge without reading the chunk (see above). Any other edit is folded into the
// batch's pending edit of the chunk unless the chunk as the batch holds it, or a
// fixed-width edit, is not in UID order (ordered); then the pending edit is written and
// this one applied at once.
func (t *txn) editChunk(key []byte, width int, adds []byte, removes []uint32, above bool) error {
	appends := !t.rewriteAppends && above && len(removes) == 0 && (width == 0 || ordered(adds, width))
	p := t.pending[string(key)]
	if p != nil && p.merge && !appends && (len(adds) > 0 || len(removes) > 0) {
		// Not an append: the merge goes in first, then the chunk is read as the batch
		// holds it.
		if err := t.writeChunk(key, p); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		if appends {
			if len(adds) == 0 {
				return nil
			}
			p = t.newPending(key, width)
			p.merge = true
			p.fold(adds, nil)
			return nil
		}
		base, found, err := t.get(key)
		if err != nil {
			return err
		}
		if !found && len(adds) == 0 {
			return nil
		}
		if !ordered(base, width) || (width > 0 && !ordered(adds, width)) {
			return t.editChunkNow(key, width, adds, removes)
		}
		p = t.newPending(key, width)
	} else if width > 0 && !ordered(adds, width) {
		if err := t.writeChunk(key, p); err != nil {
			return err
		}
		return t.editChunkNow(key, width, adds, removes)
	}
	p.fold(adds, removes)
	return nil
}

// newPending returns a new empty pending edit of the chunk at key, kept as the batch's.
func (t *txn) newPending(key []byte, width int) *pendingChunk {
	if t.pending == nil {
		t.pending = map[string]*pendingChunk{}
	}
	if len(t.pendingSlab) == cap(t.pendingSlab) {
		t.pendingSlab = make([]pendingChunk, 0, 32)
	}
	t.pendingSlab = append(t.pendingSlab, pendingChunk{width: width})
	p := &t.pendingSlab[len(t.pendingSlab)-1]
	t.pending[string(key)] = p
	return p
}

// editChunkNow applies an edit to the chunk at key as the batch holds it, writing the
// chunk now.
func (t *txn) editChunkNow(key []byte, width int, adds []byte, removes []uint32) error {
	return t.writeChunk(key, &pendingChunk{width: width, adds: adds, removes: removes})
}

// fold makes p the edit that does what p, then an edit of adds and removes, does to a
// chunk in strictly ascending UID order. For a UID u: if the later edit adds u, its
// record (unless it also removes u); else if p removes u, none; else p's record of u,
// unless the later edit removes u; else the chunk's, unless removed. So the fold adds
// p's records merged with the later ones (those winning), and removes the later edit's
// UIDs and those of p's that the later edit does not add back.
func (p *pendingChunk) fold(adds []byte, removes []uint32) {
	if len(adds) > 0 {
		first, last := p.bounds(adds)
		if len(p.removes) > 0 {
			p.removes = slices.DeleteFunc(p.removes, func(uid uint32) bool {
				return uid >= first && uid <= last && p.holds(adds, uid)
			})
		}
		if len(p.adds) == 0 || first > p.last {
			p.adds = append(p.adds, adds...)
		} else if p.width > 0 {
			p.adds = editFixedChunk(p.adds, adds, nil, p.width)
		} else {
			p.adds = editColumnChunk(p.adds, adds, nil)
		}
		p.last = max(p.last, last)
	}
	if len(removes) > 0 {
		p.removes = append(p.removes, removes...)
		slices.Sort(p.removes)
		p.removes = slices.Compact(p.removes)
	}
}

// bounds returns the first and last UID of adds (records of p's kind, UIDs ascending).
func (p *pendingChunk) bounds(adds []byte) (first, last uint32) {
	if p.width > 0 {
		return dateRecordUID(adds), dateRecordUID(adds[len(adds)-p.width:])
	}
	first, _, _, _ = nextColumnRecord(adds)
	for rest := adds; len(rest) > 0; {
		uid, _, next, ok := nextColumnRecord(rest)
		if !ok {
			break
		}
		last, rest = uid, next
	}
	return first, last
}

// holds reports whether adds (records of p's kind) holds a record of uid.
func (p *pendingChunk) holds(adds []byte, uid uint32) bool {
	if p.width > 0 {
		for off := 0; off+p.width <= len(adds); off += p.width {
			if dateRecordUID(adds[off:]) == uid {
				return true
			}
		}
		return false
	}
	for rest := adds; len(rest) > 0; {
		u, _, next, ok := nextColumnRecord(rest)
		if !ok {
			return false
		}
		if u == uid {
			return true
		}
		rest = next
	}
	return false
}

// ordered reports whether recs (a chunk's value: records of the column's format, or
// fixed-width records of width bytes if width > 0) takes apart whole into records of
// strictly ascending UIDs.
func ordered(recs []byte, width int) bool {
	if width > 0 {
		if len(recs)%width != 0 {
			return false
		}
		for off := width; off < len(recs); off += width {
			if dateRecordUID(recs[off:]) <= dateRecordUID(recs[off-width:]) {
				return false
			}
		}
		return true
	}
	prev := int64(-1)
	for len(recs) > 0 {
		uid, _, rest, ok := nextColumnRecord(recs)
		if !ok || int64(uid) <= prev {
			return false
		}
		prev, recs = int64(uid), rest
	}
	return true
}

// writeChunk applies p to the chunk at key as the batch holds it and writes the result
// (deletes the chunk when nothing is left; a merge: p's records as a merge operand), without recording it for a rollback: the
// edit belongs to commands that succeeded. The key's pending edit, if p was it, is gone.
func (t *txn) writeChunk(key []byte, p *pendingChunk) error {
	if t.pending[string(key)] == p {
		delete(t.pending, string(key))
	}
	if p.merge {
		t.merge(key, p.adds)
		return nil
	}
	old, found, err := t.get(key)
	if err != nil {
		return err
	}
	if !found && len(p.adds) == 0 {
		return nil
	}
	var recs []byte
	if p.width > 0 {
		recs = editFixedChunk(old, p.adds, p.removes, p.width)
	} else {
		recs = editColumnChunk(old, p.adds, p.removes)
	}
	switch {
	case len(recs) > 0:
		t.set(key, recs)
	case found:
		t.del(key)
	}
	return nil
}

// writePending writes the pending chunks in [lower, upper) (nil: unbounded), in key
// order.
func (t *txn) writePending(lower, upper []byte) error {
	if len(t.pending) == 0 {
		return nil
	}
	var keys []string
	for k := range t.pending {
		if (lower == nil || k >= string(lower)) && (upper == nil || k < string(upper)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := t.writeChunk([]byte(k), t.pending[k]); err != nil {
			return err
		}
	}
	return nil
}

// mayHoldPending reports whether [lower, upper) may hold a pending chunk: a quick test
// by the keys' first bytes, so the scans of other prefixes pass at once.
func (t *txn) mayHoldPending(lower, upper []byte) bool {
	if len(t.pending) == 0 {
		return false
	}
	if len(lower) == 0 || len(upper) == 0 {
		return true
	}
	for _, prefix := range []byte{prefixSortChunk, prefixSortDates, prefixSubjectRecords, prefixListingChunk, prefixThreadKeys} {
		if prefix >= lower[0] && prefix <= upper[0] {
			return true
		}
	}
	return false
}

// dropPending forgets the pending edits of the chunks in [start, end), which a range
// deletion removes.
func (t *txn) dropPending(start, end []byte) {
	for k := range t.pending {
		if k >= string(start) && k < string(end) {
			delete(t.pending, k)
		}
	}
}
