package metadata

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// TestKeysUnchanged checks the key builders against the layout they have always had
// (keys.go), written out the long way: the stored format does not change.
func TestKeysUnchanged(t *testing.T) {
	u64 := func(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"tenantAccountsPrefix", tenantAccountsPrefix("acme"), cat([]byte{prefixTenantAcct}, []byte("acme"), []byte{0})},
		{"tenantAccountKey", tenantAccountKey("acme", "a@x"), cat([]byte{prefixTenantAcct}, []byte("acme"), []byte{0}, []byte("a@x"))},
		{"mailboxNamesPrefix", mailboxNamesPrefix("a@x"), cat([]byte{prefixMailboxName}, []byte("a@x"), []byte{0})},
		{"threadIndexPrefix", threadIndexPrefix("a@x"), cat([]byte{prefixThread}, []byte("a@x"), []byte{0})},
		{"threadIndexKey", threadIndexKey("a@x", 'm', "id@y"), cat([]byte{prefixThread}, []byte("a@x"), []byte{0, 'm'}, []byte("id@y"))},
		{"mailboxPrefix", mailboxPrefix(prefixJournal, 7), u64([]byte{prefixJournal}, 7)},
		{"mailboxPrefixEnd", mailboxPrefixEnd(prefixJournal, 7), prefixEnd(mailboxPrefix(prefixJournal, 7))},
		{"mailboxPrefixEnd/255", mailboxPrefixEnd(prefixJournal, 255), prefixEnd(mailboxPrefix(prefixJournal, 255))},
		{"mailboxPrefixEnd/max", mailboxPrefixEnd(prefixJournal, math.MaxUint64), prefixEnd(mailboxPrefix(prefixJournal, math.MaxUint64))},
		{"journalKey", journalKey(7, 9), u64(u64([]byte{prefixJournal}, 7), 9)},
		{"orphanKey", orphanKey(5, "t/acme/ab"), cat(u64([]byte{prefixOrphan}, 5), []byte("t/acme/ab"))},
		{"requestAgeKey", requestAgeKey(5, "req"), cat(u64([]byte{prefixRequestAge}, 5), []byte("req"))},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, want %x", c.name, c.got, c.want)
		}
	}
}
