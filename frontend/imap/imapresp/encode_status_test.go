package imapresp

import (
	"testing"
)

// encodeCase is one response and the exact bytes it must go out as.
type encodeCase struct {
	name string
	got  []byte
	want string
}

func checkEncoded(t *testing.T, cases []encodeCase) {
	t.Helper()
	for _, tc := range cases {
		if string(tc.got) != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestAppendStatusResponse(t *testing.T) {
	checkEncoded(t, []encodeCase{
		{"tagged OK", AppendStatusResponse(nil, "a1", "OK", "", "LOGIN completed"), "a1 OK LOGIN completed\r\n"},
		{"tagged NO with code", AppendStatusResponse(nil, "a2", "NO", CodeTryCreate, "append to \"x\": mailbox does not exist"),
			"a2 NO [TRYCREATE] append to \"x\": mailbox does not exist\r\n"},
		{"untagged OK with code", AppendStatusResponse(nil, "*", "OK", CodeClosed, "Previous mailbox closed"), "* OK [CLOSED] Previous mailbox closed\r\n"},
		{"BAD", AppendStatusResponse(nil, "x", "BAD", CodeUIDRequired, "no"), "x BAD [UIDREQUIRED] no\r\n"},
		{"text made one line", AppendStatusResponse(nil, "t", "NO", "", "a\r\nb\x00c"), "t NO a  b c\r\n"},
		{"empty text", AppendStatusResponse(nil, "t", "NO", CodeCannot, ""), "t NO [CANNOT] -\r\n"},
		{"appends", AppendStatusResponse([]byte("* 1 EXISTS\r\n"), "t", "OK", "", "done"), "* 1 EXISTS\r\nt OK done\r\n"},
	})
}

func TestResponseCodes(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{AppendUIDCode(38505, NumSet([]uint32{3955})), "APPENDUID 38505 3955"},
		{AppendUIDCode(1, NumSet([]uint32{4, 5, 6, 9})), "APPENDUID 1 4:6,9"},
		{CopyUIDCode(38505, NumSet([]uint32{304, 319, 320, 321}), NumSet([]uint32{3956, 3957, 3958, 3959})), "COPYUID 38505 304,319:321 3956:3959"},
		{BadCharsetCode("UTF-8", "US-ASCII"), "BADCHARSET (UTF-8 US-ASCII)"},
		{BadEventCode([]string{"MessageNew", "FlagChange"}), "BADEVENT (MessageNew FlagChange)"},
		{CapabilityCode("IMAP4rev1 IMAP4rev2 IDLE"), "CAPABILITY IMAP4rev1 IMAP4rev2 IDLE"},
		{HighestModSeqCode(715194045007), "HIGHESTMODSEQ 715194045007"},
		{MailboxIDCode("F2212ea87-6097-4256-9d51-71338625"), "MAILBOXID (F2212ea87-6097-4256-9d51-71338625)"},
		{ModifiedCode(NumSet([]uint32{7, 9, 10})), "MODIFIED 7,9:10"},
		{PermanentFlagsCode([]string{`\Seen`, `\Deleted`, `\*`}), `PERMANENTFLAGS (\Seen \Deleted \*)`},
		{PermanentFlagsCode(nil), "PERMANENTFLAGS ()"},
		{UIDNextCode(4392), "UIDNEXT 4392"},
		{UIDValidityCode(3857529045), "UIDVALIDITY 3857529045"},
		{UnseenCode(12), "UNSEEN 12"},
		{MetadataLongEntriesCode(2199), "METADATA LONGENTRIES 2199"},
		{MetadataMaxSizeCode(16384), "METADATA MAXSIZE 16384"},
		{MetadataTooMany, "METADATA TOOMANY"},
		{MetadataNoPrivate, "METADATA NOPRIVATE"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
