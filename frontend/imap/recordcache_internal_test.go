package imap

import (
	"strings"
	"testing"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestRecordCacheBudget: the cache keeps at most its budget of bytes, dropping the least
// recently used first, keeps no record over an eighth of it, and clears the flags and
// MODSEQ of what it keeps.
func TestRecordCacheBudget(t *testing.T) {
	rc := newRecordCache(8 << 10)
	key := func(uid uint32) recordKey {
		return recordKey{owner: "alice@example.com", mailboxID: 7, uidValidity: 1, uid: uid, parts: recordParts{withStructure: true, structure: structureEnvelope}}
	}
	record := func(uid uint32) *metadatapb.MessageRecord {
		return &metadatapb.MessageRecord{Uid: uid, Modseq: 9, Flags: []string{`\Seen`}, BlobKey: strings.Repeat("k", 900)}
	}
	for uid := uint32(1); uid <= 8; uid++ {
		rc.put(key(uid), record(uid))
	}
	if rc.get(key(1)) == nil { // 1 is now the most recently used
		t.Fatal("record 1 dropped within the budget")
	}
	for uid := uint32(9); uid <= 12; uid++ {
		rc.put(key(uid), record(uid))
	}
	if rc.used > rc.budget {
		t.Errorf("%d bytes held, budget %d", rc.used, rc.budget)
	}
	if rc.get(key(1)) == nil || rc.get(key(12)) == nil {
		t.Error("a recently used record was dropped")
	}
	if rc.get(key(2)) != nil {
		t.Error("the least recently used record was kept past the budget")
	}
	if got := rc.get(key(12)); got.GetModseq() != 0 || got.GetFlags() != nil || got.GetUid() != 12 {
		t.Errorf("cached record %v keeps its flags or MODSEQ", got)
	}
	other := key(12)
	other.parts.structure = structureHeader
	if rc.get(other) != nil {
		t.Error("a record of other parts of the message was found")
	}
	other = key(12)
	other.owner = "bob@example.com"
	if rc.get(other) != nil {
		t.Error("another owner's key found alice's record")
	}
	rc.put(key(99), &metadatapb.MessageRecord{Uid: 99, BlobKey: strings.Repeat("k", 2<<10)})
	if rc.get(key(99)) != nil {
		t.Error("a record over an eighth of the budget was kept")
	}
	var none *recordCache
	none.put(key(1), record(1))
	if none.get(key(1)) != nil {
		t.Error("a nil cache returned a record")
	}
}

// TestHeaderFieldsKey: the same set of field names, in any order and case, is one key.
func TestHeaderFieldsKey(t *testing.T) {
	if a, b := headerFieldsKey([]string{"Subject", "FROM", "subject"}), headerFieldsKey([]string{"from", "Subject"}); a != b || a != "from\x00subject" {
		t.Errorf("keys %q and %q, want both from\\x00subject", a, b)
	}
	if got := headerFieldsKey(nil); got != "" {
		t.Errorf("key of no fields %q", got)
	}
}
