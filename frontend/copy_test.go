package frontend_test

import (
	"slices"
	"strings"
	"testing"
)

func TestCopyMove(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for _, s := range []string{"a", "b", "c"} {
		appendMessage(t, c, "INBOX", testMessage(s, s))
	}
	rc := loginRaw(t, srv)
	rc.ok("CREATE Dest")
	rc.ok("SELECT INBOX")
	_, tagged := rc.cmd("COPY 1:2 Dest")
	if !strings.HasPrefix(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1:2 1:2]") {
		t.Errorf("COPY: %q", tagged)
	}
	rc.expect("COPY 1 Missing", "NO [TRYCREATE]")
	untagged, tagged := rc.cmd("UID MOVE 2:3 Dest")
	if !strings.HasPrefix(tagged, "OK") || len(untagged) != 3 || !strings.HasPrefix(untagged[0], "* OK [COPYUID ") ||
		!strings.HasSuffix(untagged[0], " 2:3 3:4] Moved") || untagged[1] != "* 3 EXPUNGE" || untagged[2] != "* 2 EXPUNGE" {
		t.Errorf("UID MOVE: %q %q", untagged, tagged)
	}
	got := rc.ok("STATUS Dest (MESSAGES)")
	if !slices.Equal(got, []string{"* STATUS Dest (MESSAGES 4)"}) {
		t.Errorf("STATUS Dest = %q", got)
	}
	rc.ok("SELECT Dest")
	if got := rc.ok("UID SEARCH ALL"); !slices.Equal(got, []string{"* SEARCH 1 2 3 4"}) {
		t.Errorf("UID SEARCH in Dest = %q", got)
	}
	got = rc.ok("FETCH 4 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
	if len(got) != 1 || !strings.Contains(got[0], "Subject: c") {
		t.Errorf("moved message = %q", got)
	}
}
