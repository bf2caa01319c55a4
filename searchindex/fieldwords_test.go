package searchindex

import (
	"slices"
	"strings"
	"testing"

	"github.com/strata-mail/strata/frontend/message"
	"github.com/strata-mail/strata/frontend/message/mailtext"
)

// fieldWordsByTexts is what the index held of a header block before addField: the words
// of every field's mailtext.FieldText under text and, withValues, of every text
// mailtext.FieldValueTexts gives under the field's scope, each text folded and split
// on its own.
func fieldWordsByTexts(d *Doc, header []byte, text Scope, withValues bool) {
	d.Reset()
	for _, f := range message.Fields(header) {
		d.Add(text, []byte(mailtext.FieldText(f)))
		if withValues {
			scope := HeaderScope(f.Name)
			mailtext.FieldValueTexts(f, func(v string) bool {
				d.Add(scope, []byte(v))
				return false
			})
		}
	}
}

// checkFieldWords fails unless addField gives a header block the same words and long
// words per scope as the texts of mailtext (fieldWordsByTexts), for the message header
// (TEXT and the field scopes) and for a part header (one scope).
func checkFieldWords(t *testing.T, header []byte) {
	t.Helper()
	for _, withValues := range []bool{true, false} {
		text := ScopeText
		if !withValues {
			text = ScopeBody
		}
		want, got := NewDoc(), NewDoc()
		fieldWordsByTexts(want, header, text, withValues)
		got.Reset()
		for _, f := range message.Fields(header) {
			got.addField(f, text, HeaderScope(f.Name), withValues)
		}
		wantWords, _ := DocWords(want)
		gotWords, _ := DocWords(got)
		w, g := slices.Sorted(slices.Values(wantWords)), slices.Sorted(slices.Values(gotWords))
		if !slices.Equal(w, g) || want.long != got.long {
			t.Fatalf("header %q (values %v):\naddField %q long %b\ntexts    %q long %b", header, withValues, g, got.long, w, want.long)
		}
	}
}

// TestFieldWordsMatchFieldTexts: the header words ExtractInto takes from one decoding,
// folding and split per field (addField) are those of mailtext.FieldText and
// FieldValueTexts, for plain, RFC 2047, raw UTF-8, address, folded, long-word and
// malformed fields.
func TestFieldWordsMatchFieldTexts(t *testing.T) {
	long := strings.Repeat("x", MaxWord+3)
	for _, h := range []string{
		"Subject: Hello World\r\nFrom: Ann Example <ann@example.org>\r\n\r\n",
		"Subject: =?UTF-8?Q?R=C3=A9union_=C3=A0_Z=C3=BCrich?=\r\nTo: =?ISO-8859-1?Q?J=F6rg?= <jorg@example.de>, bob@x.y\r\n",
		"Subject: réunion ÉTÉ ǅ ſ\r\nCc: \"Smith, J\" <js@example.com> (comment)\r\nBcc: undisclosed-recipients:;\r\n",
		"Received: from mx1.example.net\r\n\tby mail.example with ESMTPS id 0A1B;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\n",
		"X-Long: " + long + " tail\r\n" + strings.Repeat("Y", MaxWord+2) + ": v\r\nSubject:" + long + "\r\n",
		"X-Empty:\r\nSubject:\r\nFrom: <>\r\nTo:   \t\r\n",
		"Subject: =?bogus?Q?x?= =?UTF-8?B?invalid?=\r\nFrom: \xff\xfe <a@b>\r\n",
		"From: a@b\r\n not a field\r\nX-Nul: a\x00b\r\n",
		"Subject: word\r\n",
	} {
		checkFieldWords(t, []byte(h))
	}
}

// FuzzFieldWords: addField's words equal those of mailtext's field texts for any header
// block.
func FuzzFieldWords(f *testing.F) {
	for _, h := range []string{
		"Subject: Hello World\r\nFrom: Ann <ann@example.org>\r\n",
		"To: =?UTF-8?B?w6k=?= <x@y>, \"a, b\" <c@d>\r\nX-A: " + strings.Repeat("z", 60) + "\r\n",
		"Subject: \xff ſ ǅ\r\n\tcontinued\r\nCc: (c) x@y\r\n",
	} {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, header []byte) {
		if len(header) > 4096 {
			return
		}
		checkFieldWords(t, header)
	})
}
