package mutf7

import "testing"

func TestModifiedUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"Tom & Jerry", "Tom &- Jerry"},
		{"&", "&-"},
		{"Été", "&AMk-t&AOk-"},
		// RFC 3501 5.1.3's example.
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"😀 smile", "&2D3eAA- smile"}, // a surrogate pair
		{"a/b", "a/b"},
		{"", ""},
	} {
		if got := Encode(tc.utf8); got != tc.mutf7 {
			t.Errorf("encode %q = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		if got, err := Decode(tc.mutf7); err != nil || got != tc.utf8 {
			t.Errorf("decode %q = %q, %v; want %q", tc.mutf7, got, err, tc.utf8)
		}
	}
	for _, bad := range []string{
		"&",           // unterminated
		"a&AMk",       // no closing "-"
		"&AMk-&AOk-",  // two adjacent runs must be one
		"&AGE-",       // "a" encoded: printable ASCII must stand for itself
		"&AM-",        // half a UTF-16 unit
		"&AMl-",       // non-zero padding bits
		"&2D0-",       // lone high surrogate
		"&3gA-",       // lone low surrogate
		"&AM/-",       // "/" is not in the modified base64 alphabet
		"caf\xc3\xa9", // 8-bit
		"tab\there",   // control character
		"&AMk=-",      // padding
	} {
		if got, err := Decode(bad); err == nil {
			t.Errorf("decode %q = %q, want an error", bad, got)
		}
	}
}

func FuzzModifiedUTF7(f *testing.F) {
	for _, seed := range []string{"Été", "~peter/mail/&U,BTFw-", "&-", "😀", "&AMk-t"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if decoded, err := Decode(s); err == nil {
			// Strict decoding accepts only the canonical form, so it round-trips.
			if again := Encode(decoded); again != s {
				t.Errorf("decode(%q) = %q encodes to %q", s, decoded, again)
			}
		}
	})
}
