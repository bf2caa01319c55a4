package imap_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/embedded"
)

// TestHeaderNameFoldSameInIndexAndScan: HEADER with a field name equal to "Subject" under
// strings.EqualFold but not under strings.ToLower ("ſubject", U+017F LATIN SMALL LETTER
// LONG S) matches the Subject field in the scan (headerMatches: strings.EqualFold), but the
// index is asked ScopeOther (mailtext.HeaderScope: ASCII case only), which never holds
// Subject's words: the message is not a candidate and SEARCH misses it.
func TestHeaderNameFoldSameInIndexAndScan(t *testing.T) {
	indexed := startServer(t)
	scanned := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	msg := "From: a@example.org\r\nTo: b@example.org\r\nSubject: quarterly zebra\r\nMessage-ID: <1@example.org>\r\n\r\nbody text\r\n"
	for _, srv := range []*embedded.Server{indexed, scanned} {
		c := login(t, srv)
		appendMessage(t, c, "INBOX", msg)
		c.Close()
	}
	waitIndexed(t, indexed, embedded.DemoAccount, "INBOX")
	search := func(srv *embedded.Server, key string) string {
		rc := loginRaw(t, srv)
		rc.ok("SELECT INBOX")
		untagged, tagged := rc.cmd(fmt.Sprintf("UID SEARCH HEADER {%d+}\r\n%s zebra BODY text", len(key), key))
		return strings.Join(untagged, "|") + " / " + tagged
	}
	for _, key := range []string{"Subject", "\u017fubject", "\u017fUBJECT"} {
		got, want := search(indexed, key), search(scanned, key)
		t.Logf("HEADER %q zebra: index %q, scan %q", key, got, want)
		if got != want {
			t.Errorf("UID SEARCH HEADER %q zebra with the index = %q, full scan = %q", key, got, want)
		}
	}
}

// TestIndexMatchesScanOnAdversarialMessages: messages with tabs, NUL, lone CR, VT/FF, non-ASCII white
// space, long words (around MaxWord and across 64 KiB windows), base64 and QP parts, RFC
// 2047 words decoding to separators; needles with separators at the ends and doubled.
func TestIndexMatchesScanOnAdversarialMessages(t *testing.T) {
	indexed := startServer(t)
	scanned := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableSearchIndex = true })
	long := strings.Repeat("abcdefgh", 8200) // one word across the 64 KiB window
	msgs := []string{
		"Subject: =?UTF-8?B?" + "aGVsbG8JCXdvcmxkAGVuZA==" + "?=\r\nFrom: x@example.org\r\n\r\nplain\ttab\x0bvt\x0cff\rcr only nul  two  spaces\r\n",
		"Subject: a\u00a0b \u2003 c\r\nFrom: y@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nU3RyYcOfZSDEsHN0YW5idWwgz4PPgiBIRUxMTwl3b3JsZA==\r\n",
		"Subject: long\r\nFrom: z@example.org\r\n\r\nstart " + long + " tail " + strings.Repeat("q", 48) + " " + strings.Repeat("r", 49) + " end\r\n",
		"Subject: qp\r\nFrom: w@example.org\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhello=09world=00zero soft=\r\nbreak hel=\r\nlo\r\n",
		"Subject: hello world\r\nFrom: v@example.org\r\n\r\nhello  world hello\tworld\r\n",
	}
	for _, srv := range []*embedded.Server{indexed, scanned} {
		c := login(t, srv)
		for _, m := range msgs {
			appendMessage(t, c, "INBOX", m)
		}
		c.Close()
	}
	waitIndexed(t, indexed, embedded.DemoAccount, "INBOX")
	ci, cs := login(t, indexed), login(t, scanned)
	for _, c := range []*imapclient.Client{ci, cs} {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	needles := []string{"hello world", "hello  world", " world", "hello ", "o\tw", "lo\twor", "o w", "tab vt", "tab\x0bvt", "vt\x0cff", "cr only", "nul  two",
		"two  spaces", "a\u00a0b", "\u2003 c", "b \u2003", "straße", "STRASSE", "istanbul", "σς", "ΣΣ", "hello\tworld", "ghabcdefgh", "h tail", "tail q", long[:60], "defgh tail",
		strings.Repeat("q", 48), strings.Repeat("r", 49), " " + strings.Repeat("r", 49), "world end", "soft break", "zero soft", "break hello"}
	for _, needle := range needles {
		for _, crit := range []*imap.SearchCriteria{
			{Body: []string{needle}}, {Text: []string{needle}},
			{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: needle}}},
		} {
			got, want := searchUIDs(t, ci, crit), searchUIDs(t, cs, crit)
			if !slices.Equal(got, want) {
				t.Errorf("UID SEARCH body %q text %q header %q with the index = %v, full scan = %v", crit.Body, crit.Text, crit.Header, got, want)
			}
		}
	}
}
