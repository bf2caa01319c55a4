package metadata

import (
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Threads (RFC 8474 5.2 THREADID). Every message gets a thread id when an Append brings it
// into an owner's mailboxes (APPEND, REPLACE, and any delivery path, which appends), in the
// command that adds it, from the owner's thread index ('H' keys, keys.go) and the ThreadKeys
// the frontend extracted from its header at ingest. The keys come from the log and the index
// is FSM state, so every replica threads alike. Message-IDs and base subjects compare
// exactly as the frontend normalised them:
//
//  1. A message whose content (blob key) the owner already has joins that content's thread:
//     RFC 8474 5.2 requires one THREADID for all messages with the same EMAILID.
//  2. Otherwise it joins the thread of the first of its own Message-ID, then the ids it
//     refers to (In-Reply-To, then References from the nearest ancestor to the root) that
//     the index knows: the REFERENCES rule of RFC 5256 4 and of JWZ threading.
//  3. Otherwise, if its subject is a reply or forward (RFC 5256 2.1: "Re:", "Fwd:",
//     "(fwd)", "[Fwd: ...]"), it joins the thread that last took a message with the same
//     base subject. This is RFC 5256's subject grouping, narrowed to replies and forwards
//     none of whose references the index knows (a client that sends no References, or a
//     thread whose start this owner never received), so that two unrelated messages that
//     happen to share a subject ("Invoice", "Hello") never end up in one thread.
//  4. Otherwise it starts a thread, whose id derives from its content (objectid.go).
//
// The message's content, its own id and every id it refers to are then indexed to that
// thread where they are not yet, and its base subject always (the latest thread of a base
// subject wins). Indexing the ids a message refers to, not only its own, is how a reply that
// arrives before its original works: the reply starts a thread and records the original's
// id, and the original, when it comes, finds its own id there and joins. A THREADID never
// changes once assigned (RFC 8474 5.2 MUST): two threads that a later message shows to be
// one stay two, and the message joins the first it finds. The subject is not compared when
// a reference matches (Cyrus's conversations also ask for the same base subject; Strata
// follows the references, as RFC 5256 4 does).
//
// A copy or move keeps the thread id of its source, except that a copy into another owner's
// mailbox takes the thread the destination owner already has for that content (rule 1),
// so that the owner's messages with one EMAILID keep one THREADID; the destination owner's
// index then learns the content, not the Message-IDs (which only ingest sends).
//
// The index keeps its entries when messages are expunged: a later reply still finds its
// thread, and an expunged message appended again gets its old THREADID back. Each message
// adds at most 3 + maxThreadReferences entries, so the index grows with the messages an
// owner ever received and is removed with the owner (deleteAccount, deleteTenant).

// Bounds on ThreadKeys; the frontend (frontend/message.ThreadKeys) keeps within them and the
// FSM refuses a command that does not.
const (
	maxThreadReferences = 32
	maxMessageIDBytes   = 250
	maxBaseSubjectBytes = 256
)

// checkThreadKeys refuses ThreadKeys outside the bounds, which keep the index's keys short
// and the work per message constant.
func checkThreadKeys(keys *metadatapb.ThreadKeys) error {
	if len(keys.GetReferences()) > maxThreadReferences {
		return errInvalid("%d thread references, more than %d", len(keys.GetReferences()), maxThreadReferences)
	}
	if id := keys.GetMessageId(); len(id) > maxMessageIDBytes {
		return errInvalid("invalid Message-ID %q for threading", id)
	}
	for _, id := range keys.GetReferences() {
		if len(id) > maxMessageIDBytes {
			return errInvalid("invalid Message-ID %q for threading", id)
		}
	}
	if len(keys.GetBaseSubject()) > maxBaseSubjectBytes {
		return errInvalid("base subject of %d bytes for threading, more than %d", len(keys.GetBaseSubject()), maxBaseSubjectBytes)
	}
	return nil
}

// lookupThread returns the thread the index entry key names, 0 if there is none.
func (c *cmdCtx) lookupThread(key []byte) (uint64, error) {
	v, _, err := c.tx.get(key)
	return decodeUint64(v), err
}

// indexThread points key at thread unless it already names one.
func (c *cmdCtx) indexThread(key []byte, thread uint64) error {
	if known, err := c.lookupThread(key); err != nil || known != 0 {
		return err
	}
	c.tx.mustSet(key, c.tx.encodeUint64(thread))
	return nil
}

// threadIndexKey is threadIndexKey (keys.go) built in the batch's arena.
func (c *cmdCtx) threadIndexKey(owner string, kind byte, value string) []byte {
	return appendThreadIndexKey(c.tx.alloc(3+len(owner)+len(value)), owner, kind, value)
}

// ingestThread returns the thread of a message that owner receives with blobKey and keys
// (nil: none), and indexes it (rules 1 to 4 above).
func (c *cmdCtx) ingestThread(owner, blobKey string, keys *metadatapb.ThreadKeys) (uint64, error) {
	// The index keys of the Message-ID, then of the references, built once in the arena
	// for the lookups and the writes.
	var idKeysBuf [4][]byte
	idKeys := idKeysBuf[:0]
	if id := keys.GetMessageId(); id != "" {
		idKeys = append(idKeys, c.threadIndexKey(owner, 'm', id))
	}
	for _, id := range keys.GetReferences() {
		if id != "" {
			idKeys = append(idKeys, c.threadIndexKey(owner, 'm', id))
		}
	}
	contentKey := c.threadIndexKey(owner, 'c', blobKey)
	thread, err := c.lookupThread(contentKey)
	if err != nil {
		return 0, err
	}
	for _, key := range idKeys {
		if thread != 0 {
			break
		}
		if thread, err = c.lookupThread(key); err != nil {
			return 0, err
		}
	}
	subject := keys.GetBaseSubject()
	if thread == 0 && keys.GetReply() && subject != "" {
		if thread, err = c.lookupThread(threadSubjectKey(owner, subject)); err != nil {
			return 0, err
		}
	}
	if thread == 0 {
		thread = threadOfContent(blobKey)
	}
	if err := c.indexThread(contentKey, thread); err != nil {
		return 0, err
	}
	for _, key := range idKeys {
		if err := c.indexThread(key, thread); err != nil {
			return 0, err
		}
	}
	if subject != "" {
		c.tx.mustSet(c.threadIndexKey(owner, 's', subject), c.tx.encodeUint64(thread))
	}
	return thread, nil
}

// copiedThread returns the thread of a copy into a mailbox of owner of a message in thread
// (0: a message stored before threads, see MessageIndex.thread_id) with blobKey: the thread
// owner has for that content, else the source's, which owner's index then learns.
func (c *cmdCtx) copiedThread(owner, blobKey string, thread uint64) (uint64, error) {
	known, err := c.lookupThread(threadContentKey(owner, blobKey))
	if err != nil || known != 0 {
		return known, err
	}
	if thread == 0 {
		thread = threadOfContent(blobKey)
	}
	c.tx.mustSet(threadContentKey(owner, blobKey), encodeUint64(thread))
	return thread, nil
}

// forgetThreads removes the thread index of owner.
func (c *cmdCtx) forgetThreads(owner string) error {
	prefix := threadIndexPrefix(owner)
	var keys [][]byte
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		keys = append(keys, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		c.tx.mustDelete(k)
	}
	return nil
}

// messageThread returns the thread id of a stored message.
func messageThread(idx *metadatapb.MessageIndex) uint64 {
	if t := idx.GetThreadId(); t != 0 {
		return t
	}
	return threadOfContent(idx.GetBlobKey())
}
