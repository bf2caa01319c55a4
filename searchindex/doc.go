// Package searchindex is Strata's text-search index (DESIGN.md: "the text-search index is
// derived data"): a word dictionary and word postings of the decoded, case-folded text
// that IMAP SEARCH's text keys read (package mailtext), so that SEARCH BODY, TEXT,
// SUBJECT, FROM, TO, CC, BCC and HEADER look at a few candidate messages instead of every
// message of a mailbox, and answer a needle within one word without reading any.
//
// # Why words in a plain Pebble layout, not bleve
//
// IMAP's text keys are substring matches (RFC 9051 6.4.4) after folding, not word
// matches: SEARCH BODY "ello wor" must find "Hello world". bleve v2 indexes terms and
// scores them, merges segments and keeps a document store, all paid for at every APPEND,
// while the answer to a substring must still come from the words holding it. A word
// dictionary with posting lists in Pebble (already the metadata store's engine, so no new
// dependency) answers substrings itself: every occurrence of a needle lies in words of
// the text, which the dictionary lists (below); the frontend verifies the candidates that
// are not proven with the same code as the full scan, which makes the answers identical
// to a full scan whatever the index holds.
//
// # Layout (one Pebble store per node, keys ordered by account, then mailbox id)
//
//	L                                                        -> the layout version (3)
//	m <account> <mailbox id>                                 -> state (UIDVALIDITY, last indexed UID, MODSEQ synced, docs, dead)
//	v <account> <mailbox id> <scope> <word>                  -> ""   (the word dictionary of a scope)
//	w <account> <mailbox id> <scope> <word> 0 <first uid>    -> the UIDs of one indexing batch holding the word (delta varints)
//	l <account> <mailbox id> <scope> <first uid>             -> the UIDs of one batch with a word longer than MaxWord in the scope
//	d <account> <mailbox id> <uid>                           -> ""   (an indexed message)
//	u <account> <mailbox id> <uid>                           -> ""   (a message that could not be indexed)
//	x <account> <mailbox id> <uid>                           -> ""   (a tombstone: expunged, filtered out of answers)
//
// Postings are written in chunks, one key per word per indexing batch (the indexer lets
// changes gather until none came for 200 ms, or 5 s under a steady load, so a burst of
// appends is one batch: the larger the batch, the fewer keys per message). An expunge
// writes a tombstone; once tombstones pass a quarter of a mailbox's docs (and 1,000), the
// indexer drops the mailbox and indexes it again. A store whose layout version is not
// this one (layout 1 also held a trigram posting list per scope and trigram, and no
// version key) is emptied when it is opened, and the indexer builds it again from the
// stored messages; meanwhile the mailboxes have no state and the frontend scans them.
//
// A scope says which key reads the text: BODY (the body's text parts and encapsulated
// headers), the header fields as TEXT reads them ("Name: value") and the MIME headers of
// parts, and the values of Subject, From, To, Cc, Bcc and of every other field (one scope
// for all others).
//
// # Exact answers (a needle within one word)
//
// The words of a scope's text are its maximal runs of bytes other than ASCII white space
// and NUL (mailtext.IsWordSeparator). A needle without such a byte (mailtext.InOneWord)
// can only occur inside one word, so the messages holding it in a scope are exactly the
// union of the postings of the dictionary words that contain it (one bytes.Index pass
// over the dictionary, O(distinct words of the mailbox), bounded by maxVocabScan; the
// dictionaries searched lately stay in memory, and a batch that adds words to their
// mailbox merges them in, vocab.go), their postings united in a bit set over the mailbox's UIDs and sent as a
// bitmap when that is smaller than the list (SearchTextResult.uid_bitmap). That answer is
// exact, not a superset: the frontend takes it without reading the message, except for
// the messages Result.Verify lists (a word longer than MaxWord, 48 bytes, in the scope,
// kept out of the dictionary; messages not indexed) and those above the last indexed
// UID, which it verifies as before. ScopeOther mixes the fields of every other name, so
// HEADER X-Foo takes the answer as candidates and verifies them. Why words rather than
// the stored folded text per message: verifying a common word against stored text still
// costs a read and a scan per match (a million at 1,000,000 messages), while the
// dictionary costs one scan of distinct words whatever the number of matches.
//
// # Candidates from words (a needle across words)
//
// A needle with separators ("ello wor") splits at them into pieces ("ello", "wor"). In a
// text holding it, the first piece ends a word, every middle piece is a whole word and
// the last piece begins a word (an empty piece, from a separator at an end or two in a
// row, says nothing). The candidates are the messages holding, for every non-empty piece,
// one of the dictionary words it may lie in (the same cached dictionary, each piece's
// postings united in a bit set and the sets intersected), plus those with a word longer
// than MaxWord in the scope: a superset of the messages holding the needle, verified by
// the frontend. A needle of separators alone is in every text with two words and is not
// asked.
//
// Until layout 2 the index also kept the postings of every trigram of the text, and took
// needles with separators from them: a message has a few thousand distinct trigrams
// against a few hundred distinct words, and the trigrams were most of the indexer's CPU,
// Pebble writes and size (docs/benchmarks.md "Search index without trigrams"). FUZZY
// (RFC 6203) now scores by the words too: a message's share of the needle's trigrams
// that lie inside its words (Fuzzy), so a message holding the needle scores 100.
//
// # Durability
//
// The store runs without a WAL (pebble.Options.DisableWAL): it is derived data, and a
// mailbox's state is committed in the same batch as the postings it covers. Pebble flushes
// memtables in commit order, so after a crash the store holds a prefix of its batches,
// each state matching its postings, and the indexer catches up from those states (Run
// starts with CatchUp; TestCrashResume kills a writing process with SIGKILL). Close
// flushes the memtables.
//
// # Cost on the write path
//
// The indexer runs in the metadata node's process, on the cores that apply the log.
// While changes keep coming (one within the last second) it indexes at a low duty cycle:
// after each 20 ms of indexing it sleeps four times as long, and it yields to runnable
// goroutines between messages (runtime.Gosched), so it lags under a write load and
// catches up when the writes pause; answers stay exact meanwhile (Superset). Per message
// it reads the body's text parts once (mailtext.WalkSegments with pooled fold buffers)
// and keeps its distinct words in a map reused from message to message; a batch writes
// one posting key per distinct word of the batch, and a dictionary key only for the words
// the mailbox's dictionary of that scope may lack: when the dictionary is known to be the
// store's (cached at the generation before the commit, or read by the commit itself when
// the batch adds at least 512 words to the scope, vocab.go prepare), only the words it
// lacks; otherwise all of them, as the dictionary keys hold no value to lose. A batch
// sets those keys in key order, its words sorted once at the commit (Pebble then inserts
// each into its memtable next to the one before rather than searching from the top), and
// Add finds a word the doc gave the batch before by the slot the doc's interned word
// keeps, without a map lookup per word and message. Drops make the cached dictionaries
// of their mailboxes stale, so a dropped word is never skipped. Where the ingest path runs in the same process
// (`strata serve`), it hands each body it stores to the indexer in memory
// (RecentBodies: a byte budget, a cap per body, each taken once), so a fresh message's
// body is not read back from the blob store; the header fields come from the record's
// structure, parsed once at ingest. A body that is not there (too large, over the budget,
// after a restart, a cluster's metadata node) is read from the blob store as before.
// The append hands over its committed records too (RecentBodies.KeepAppended: mailbox,
// UID, blob key, the structure sent to the metadata): the indexer then lists the UIDs
// above its last indexed one (ListMessages, no structures) and fetches only the records
// nobody handed over (COPY, MOVE, another frontend, a restart); a handed record of a
// message the listing no longer shows (expunged meanwhile) is dropped, so the index
// holds the same messages as after a FetchMessages (recentrecords.go).
//
// # Invariants
//
//   - Superset. For every message with a UID at or below the mailbox's last indexed UID,
//     the index holds the postings of all the text mailtext defines for it, or lists it in
//     u (always a candidate). UIDs above the last indexed UID are always candidates. So
//     Candidates never leaves out a message a full scan would match, even while the
//     index lags the change feed or is being rebuilt, and the frontend's verification
//     makes the answer exact.
//   - Derived data. Nothing here is the only copy of anything; Rebuild recreates an
//     account's index from the stored messages, and a mailbox or account that no longer
//     exists is dropped when the indexer next looks at it.
//   - Bounded work. Queries check their context every few thousand postings; the caller's
//     deadline bounds them (the frontend answers NO [LIMIT], RFC 5530).
//
// # Where it runs (DESIGN terms)
//
// The index is a role beside the metadata FSM: each metadata node (and `strata serve`)
// keeps the index of the accounts its Raft groups hold, so accounts are placed exactly as
// their metadata. The Indexer is fed by the node's applied change feed (the FSM's
// in-process change events: account, mailbox, HIGHESTMODSEQ, and what the command did,
// metadata.ChangeKinds) and follows it incrementally: a flag, keyword, rename or rights
// change needs no work (none of it is indexed text; the indexer only notes the MODSEQ,
// CaughtUp); an append makes it read the records above its last indexed UID through the
// Metadata gRPC API and their bodies from the blob store; an expunge (MOVE's source
// too) makes it drop what the journal's tombstones since its synced MODSEQ
// (ListVanished) say was expunged. A created or deleted mailbox, an overflow of the feed
// and a restart compare a whole mailbox with the index (Sync: after a restart it
// compares each mailbox's HIGHESTMODSEQ with the one it synced and catches up); an
// account's deletion arrives as its mailboxes' deletions, and the sweep drops what is
// left. Stats counts the work. Frontends
// stay stateless: they ask the Metadata service's SearchText RPC, routed like every other
// call of the account, for candidates, and combine them with the rest of the SEARCH
// evaluation. Followers index too, so any replica can answer; a replica that lags only
// returns more candidates (Superset). Each replica's indexer reads its own node's applied
// state (metadata.LocalReads, set by fsmfeed), on a follower as on the leader: the change
// feed it follows is that node's FSM's. So every metadata node holds an index of every
// account of its group, each its own: a rebuild (RebuildSearchIndex) recreates the index
// of the node it is sent to only, and `strata index rebuild --etcd` sends it to every
// node registered in etcd, one after the other. SearchText is a linearizable read today
// (frontends send it to the leader), so the followers' indexes serve once one of them
// leads.
//
// `strata metadata` runs the index by default when it has the frontends' blob flags (it
// cannot read bodies otherwise: without them it starts without the index and warns). A
// node without the index answers SearchText indexed=false, and the frontend scans, so a
// cluster whose nodes differ (a rolling change of the flag) still answers every SEARCH
// right. Whether to announce SEARCH=FUZZY (RFC 6203) a frontend learns per session from
// its login's answer (metadatapb.Account.search_index: the answering node indexes), keeping
// nothing itself; a FUZZY key answered by a node without the index matches exactly, which
// RFC 6203 3 allows.
package searchindex
