package lmtp

import (
	"testing"

	"github.com/strata-mail/strata/frontend/message"
)

// TestSpamVerdict checks the verdict read from each filter's header fields.
func TestSpamVerdict(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   Verdict
	}{
		{"X-Spam-Flag: YES\r\n", Verdict{Spam: true}},
		{"X-Spam-Flag: NO\r\n", Verdict{}},
		{"X-Spam-Status: Yes, score=7.3 required=5.0 tests=A,B autolearn=no\r\n", Verdict{Spam: true, Score: 7.3, HasScore: true}},
		{"X-Spam-Status: No, score=-0.1 required=5.0\r\n", Verdict{Score: -0.1, HasScore: true}},
		{"X-Spam-Status: Yes,\r\n score=12.0\r\n", Verdict{Spam: true, Score: 12, HasScore: true}},
		{"X-Spam: yes\r\n", Verdict{Spam: true}},
		{"X-Rspamd-Action: rewrite subject\r\n", Verdict{Spam: true}},
		{"X-Rspamd-Action: no action\r\n", Verdict{}},
		{"X-Spamd-Result: default: True [15.50 / 15.00]; R_SPF_FAIL(1.00)[-all]\r\n", Verdict{Spam: true, Score: 15.5, HasScore: true}},
		{"X-Spamd-Result: default: False [1.20 / 15.00]\r\n", Verdict{Score: 1.2, HasScore: true}},
		{"X-Spam-Status: Yes, score=NaN\r\nX-Spamd-Result: default: True [inf / 1]\r\n", Verdict{Spam: true}},
		{"X-Spamd-Result: garbage\r\nX-Spam-Status: maybe\r\n", Verdict{}},
		{"Subject: X-Spam-Flag: YES\r\n", Verdict{}},
	} {
		got := SpamVerdict(message.Fields([]byte(tc.header + "\r\n")))
		if got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.header, got, tc.want)
		}
	}
}

// FuzzSpamVerdict feeds arbitrary header blocks to the verdict parser, which must not panic
// and must report a finite score only with HasScore.
func FuzzSpamVerdict(f *testing.F) {
	f.Add([]byte("X-Spam-Status: Yes, score=7.3 required=5.0\r\n\r\n"))
	f.Add([]byte("X-Spamd-Result: default: True [15.50 / 15.00]; A(1)\r\n\r\n"))
	f.Add([]byte("X-Spam-Flag: YES\r\nX-Rspamd-Action: reject\r\nX-Spam: Yes\r\n\r\n"))
	f.Add([]byte("X-Spamd-Result: :[/\r\nX-Spam-Status: ,score=\r\n\r\n"))
	f.Fuzz(func(t *testing.T, header []byte) {
		v := SpamVerdict(message.Fields(header))
		if !v.HasScore && v.Score != 0 {
			t.Fatalf("score %v without HasScore", v.Score)
		}
		if v.Score != v.Score || v.Score > 1e300 || v.Score < -1e300 {
			t.Fatalf("score %v is not finite", v.Score)
		}
	})
}

// FuzzHeloName checks that any LHLO argument becomes a name with only the characters of a
// domain or address literal, so it cannot shape the Received field.
func FuzzHeloName(f *testing.F) {
	f.Add("client.test")
	f.Add("[127.0.0.1]")
	f.Add("evil\r\nX-Spam-Flag: NO")
	f.Add("(comment);")
	f.Fuzz(func(t *testing.T, name string) {
		got := heloName(name)
		if got == "" {
			t.Fatal("empty name")
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == ':' || r == '[' || r == ']') {
				t.Fatalf("heloName(%q) = %q holds %q", name, got, r)
			}
		}
	})
}
