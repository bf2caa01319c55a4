package imapresp

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/strata-mail/strata/frontend/message"
)

func TestAppendMessageUpdates(t *testing.T) {
	checkEncoded(t, []encodeCase{
		{"EXISTS", AppendExists(nil, 23), "* 23 EXISTS\r\n"},
		{"EXISTS 0", AppendExists(nil, 0), "* 0 EXISTS\r\n"},
		{"RECENT", AppendRecent(nil, 5), "* 5 RECENT\r\n"},
		{"EXPUNGE", AppendExpunge(nil, 3), "* 3 EXPUNGE\r\n"},
		{"VANISHED", AppendVanished(nil, false, NumSet([]uint32{405, 407, 408, 409, 410})), "* VANISHED 405,407:410\r\n"},
		{"VANISHED (EARLIER)", AppendVanished(nil, true, NumSet([]uint32{41, 42, 43, 99})), "* VANISHED (EARLIER) 41:43,99\r\n"},
		{"FLAGS", AppendFlags(nil, []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`, "$Forwarded"}),
			"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"},
		{"FLAGS none", AppendFlags(nil, nil), "* FLAGS ()\r\n"},
	})
}

func TestAppendFetchUpdates(t *testing.T) {
	flags := []string{`\Seen`, "$Important"}
	checkEncoded(t, []encodeCase{
		{"FETCH start", AppendFetchStart(nil, 12, false), "* 12 FETCH ("},
		{"UIDFETCH start", AppendFetchStart(nil, 4827, true), "* 4827 UIDFETCH ("},
		{"MODSEQ item", AppendModSeq(nil, 12121231000), "MODSEQ (12121231000)"},
		{"object id", AppendObjectID([]byte("EMAILID "), "M6d99ac3275bb4e"), "EMAILID (M6d99ac3275bb4e)"},
		{"object id NIL", AppendObjectID([]byte("THREADID "), ""), "THREADID NIL"},
		{"flag list", AppendFlagList(nil, flags), `(\Seen $Important)`},
		{"flags", AppendFlagsFetch(nil, FlagsFetch{Num: 2, Flags: flags}), "* 2 FETCH (FLAGS (\\Seen $Important))\r\n"},
		{"no flags", AppendFlagsFetch(nil, FlagsFetch{Num: 2}), "* 2 FETCH (FLAGS ())\r\n"},
		{"flags with UID", AppendFlagsFetch(nil, FlagsFetch{Num: 2, UID: 17, Flags: flags}), "* 2 FETCH (UID 17 FLAGS (\\Seen $Important))\r\n"},
		{"CONDSTORE", AppendFlagsFetch(nil, FlagsFetch{Num: 7, UID: 30, Flags: flags, ModSeq: 90060115205545359}),
			"* 7 FETCH (UID 30 FLAGS (\\Seen $Important) MODSEQ (90060115205545359))\r\n"},
		{"UIDONLY", AppendFlagsFetch(nil, FlagsFetch{Num: 30, UIDFetch: true, Flags: flags, ModSeq: 5}),
			"* 30 UIDFETCH (FLAGS (\\Seen $Important) MODSEQ (5))\r\n"},
		{"STORE .SILENT", AppendModSeqFetch(nil, 7, false, 30, 12), "* 7 FETCH (UID 30 MODSEQ (12))\r\n"},
		{"STORE .SILENT UIDONLY", AppendModSeqFetch(nil, 30, true, 0, 12), "* 30 UIDFETCH (MODSEQ (12))\r\n"},
	})
}

// writtenSearch returns what WriteSearch writes.
func writtenSearch(t *testing.T, nums []uint32, modseq uint64) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := WriteSearch(&out, nums, modseq); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// oneBuffer renders what writeNumbers writes, in one buffer: the reference of
// TestWriteSearchPieces.
func oneBuffer(head string, nums []uint32, modseq uint64) []byte {
	b := []byte(head)
	for _, n := range nums {
		b = strconv.AppendUint(append(b, ' '), uint64(n), 10)
	}
	if modseq != 0 {
		b = strconv.AppendUint(append(b, " (MODSEQ "...), modseq, 10)
		b = append(b, ')')
	}
	return append(b, '\r', '\n')
}

// TestWriteSearchPieces checks an answer of many pieces (numbersPiece), of numbers of
// every length, against the one-buffer rendering, with and without MODSEQ.
func TestWriteSearchPieces(t *testing.T) {
	nums := make([]uint32, 300_000) // 1 to 4,199,986,012: 1 to 10 digits, about 3 MB
	for i := range nums {
		nums[i] = uint32(i)*14_000 + uint32(i%13) + 1
	}
	for _, modseq := range []uint64{0, 18446744073709551615} {
		want := oneBuffer("* SEARCH", nums, modseq)
		if got := writtenSearch(t, nums, modseq); !bytes.Equal(got, want) {
			t.Fatalf("MODSEQ %d: %d bytes written, want %d", modseq, len(got), len(want))
		}
	}
}

func TestAppendSearch(t *testing.T) {
	utf8 := message.Encoder{UTF8: true}
	checkEncoded(t, []encodeCase{
		{"SEARCH", writtenSearch(t, []uint32{2, 3, 6}, 0), "* SEARCH 2 3 6\r\n"},
		{"SEARCH nothing", writtenSearch(t, nil, 0), "* SEARCH\r\n"},
		{"SEARCH MODSEQ", writtenSearch(t, []uint32{2, 5}, 917162500), "* SEARCH 2 5 (MODSEQ 917162500)\r\n"},
		{"ESEARCH ALL", AppendESearch(nil, message.Encoder{}, ESearch{Tag: "A282", Returns: []string{"ALL"}, Nums: []uint32{2, 3, 4, 10}}),
			"* ESEARCH (TAG \"A282\") ALL 2:4,10\r\n"},
		{"ESEARCH in the client's order", AppendESearch(nil, message.Encoder{}, ESearch{Tag: "A283", UID: true, Returns: []string{"MAX", "COUNT", "MIN", "SAVE"}, Nums: []uint32{7, 9, 4000}}),
			"* ESEARCH (TAG \"A283\") UID MAX 4000 COUNT 3 MIN 7\r\n"},
		{"ESEARCH nothing found", AppendESearch(nil, message.Encoder{}, ESearch{Tag: "t", Returns: []string{"MIN", "MAX", "ALL", "COUNT"}}),
			"* ESEARCH (TAG \"t\") COUNT 0\r\n"},
		{"ESEARCH MODSEQ", AppendESearch(nil, message.Encoder{}, ESearch{Tag: "t", Returns: []string{"MIN"}, Nums: []uint32{3, 8}, ModSeq: 3}),
			"* ESEARCH (TAG \"t\") MIN 3 MODSEQ 3\r\n"},
		{"ESEARCH quoted tag", AppendESearch(nil, message.Encoder{}, ESearch{Tag: `a"b`, Returns: []string{"COUNT"}}),
			"* ESEARCH (TAG \"a\\\"b\") COUNT 0\r\n"},
		{"ESEARCH 8-bit tag, IMAP4rev1", AppendESearch(nil, message.Encoder{}, ESearch{Tag: "tä", Returns: []string{"COUNT"}}),
			"* ESEARCH (TAG {3}\r\ntä) COUNT 0\r\n"},
		{"ESEARCH 8-bit tag, UTF-8", AppendESearch(nil, utf8, ESearch{Tag: "tä", Returns: []string{"COUNT"}}),
			"* ESEARCH (TAG \"tä\") COUNT 0\r\n"},
	})
}

// TestFlagUpdatesAllocateNothing pins that the encoders of the hot path, the updates a
// session sends for every changed or expunged message, append into the buffer they are
// given without allocating when it is large enough.
func TestFlagUpdatesAllocateNothing(t *testing.T) {
	buf := make([]byte, 0, 256)
	flags := []string{`\Seen`, `\Flagged`, "$Important"}
	for name, encode := range map[string]func(){
		"FlagsFetch":  func() { AppendFlagsFetch(buf, FlagsFetch{Num: 123456, UID: 654321, Flags: flags, ModSeq: 1 << 40}) },
		"ModSeqFetch": func() { AppendModSeqFetch(buf, 123456, false, 654321, 1<<40) },
		"EXPUNGE":     func() { AppendExpunge(buf, 123456) },
		"EXISTS":      func() { AppendExists(buf, 123456) },
	} {
		if n := testing.AllocsPerRun(100, encode); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// TestAppendContextUpdate pins the ADDTO and REMOVEFROM forms of RFC 5267 4.3.3 and 4.3.4,
// the examples of those sections among them.
func TestAppendContextUpdate(t *testing.T) {
	enc := message.Encoder{}
	checkEncoded(t, []encodeCase{
		{"ADDTO of a SEARCH context (4.3.3)", AppendContextUpdate(nil, enc, "B01", true, []ContextUpdate{{Nums: []uint32{32768, 32769}}}),
			"* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n"},
		{"REMOVEFROM of a SEARCH context (4.3.4)", AppendContextUpdate(nil, enc, "B01", true, []ContextUpdate{{Remove: true, Nums: []uint32{32768}}}),
			"* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768)\r\n"},
		{"two ADDTO pairs in order (4.3.3)", AppendContextUpdate(nil, enc, "C01", true, []ContextUpdate{{Pos: 1, Nums: []uint32{2733}}, {Pos: 1, Nums: []uint32{2731, 2732}}}),
			"* ESEARCH (TAG \"C01\") UID ADDTO (1 2733 1 2731:2732)\r\n"},
		{"sort order kept in the set", AppendContextUpdate(nil, enc, "C02", false, []ContextUpdate{{Pos: 3, Nums: []uint32{9, 8, 7}}}),
			"* ESEARCH (TAG \"C02\") ADDTO (3 9,8,7)\r\n"},
		{"kinds alternate", AppendContextUpdate(nil, enc, "C03", false, []ContextUpdate{
			{Remove: true, Pos: 5, Nums: []uint32{4}}, {Remove: true, Pos: 2, Nums: []uint32{1}}, {Pos: 1, Nums: []uint32{6}}, {Remove: true, Pos: 9, Nums: []uint32{3}}}),
			"* ESEARCH (TAG \"C03\") REMOVEFROM (5 4 2 1) ADDTO (1 6) REMOVEFROM (9 3)\r\n"},
		{"NOUPDATE", []byte(NoUpdateCode(`B0"2`)), `NOUPDATE "B0\"2"`},
	})
}
