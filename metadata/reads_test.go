package metadata

import "testing"

func TestHeaderFields(t *testing.T) {
	header := "Received: from a\r\n\tby b\r\n" +
		"Subject: hello\r\n" +
		" world\r\n" +
		"From : Alice <a@example.com>\r\n" +
		"X-Spam: yes\r\n" +
		"subject: second\r\n" +
		"NoColonLine\r\n" +
		" continuation of nothing kept\r\n" +
		"\r\n" +
		"Subject: in the body\r\n"
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"Subject"}, "Subject: hello\r\n world\r\nsubject: second\r\n"},
		{[]string{"FROM"}, "From : Alice <a@example.com>\r\n"},
		{[]string{"received", "x-spam"}, "Received: from a\r\n\tby b\r\nX-Spam: yes\r\n"},
		{[]string{"Subj"}, ""},
		{[]string{"NoColonLine"}, ""},
		{[]string{"Cc"}, ""},
	} {
		if got := string(headerFields([]byte(header), tc.names)); got != tc.want {
			t.Errorf("headerFields(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
	// A header without a final CRLF or blank line still yields its last field.
	if got := string(headerFields([]byte("A: 1\nB: 2"), []string{"b"})); got != "B: 2" {
		t.Errorf("unterminated header: got %q", got)
	}
	if got := headerFields(nil, []string{"a"}); len(got) != 0 {
		t.Errorf("empty header: got %q", got)
	}
}
