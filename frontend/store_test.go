package frontend_test

import (
	"slices"
	"testing"
)

func TestStore(t *testing.T) {
	srv := startServer(t)
	c := login(t, srv)
	for _, s := range []string{"a", "b", "c"} {
		appendMessage(t, c, "INBOX", testMessage(s, s))
	}
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	if got, want := rc.ok(`STORE 1:2 +FLAGS (\Seen $Work)`), []string{`* 1 FETCH (FLAGS (\Seen $Work))`, `* 2 FETCH (FLAGS (\Seen $Work))`}; !slices.Equal(got, want) {
		t.Errorf("+FLAGS: %q, want %q", got, want)
	}
	if got, want := rc.ok(`UID STORE 2 -FLAGS ($Work)`), []string{`* 2 FETCH (UID 2 FLAGS (\Seen))`}; !slices.Equal(got, want) {
		t.Errorf("UID -FLAGS: %q, want %q", got, want)
	}
	if got := rc.ok(`STORE 3 FLAGS.SILENT (\Flagged \Draft)`); len(got) != 0 {
		t.Errorf(".SILENT answered %q", got)
	}
	if got, want := rc.ok(`FETCH 1:* FLAGS`), []string{`* 1 FETCH (FLAGS (\Seen $Work))`, `* 2 FETCH (FLAGS (\Seen))`, `* 3 FETCH (FLAGS (\Flagged \Draft))`}; !slices.Equal(got, want) {
		t.Errorf("FETCH FLAGS: %q, want %q", got, want)
	}
	if got, want := rc.ok(`STORE * FLAGS ()`), []string{`* 3 FETCH (FLAGS ())`}; !slices.Equal(got, want) {
		t.Errorf("FLAGS (): %q, want %q", got, want)
	}
	rc.expect("STORE 4 +FLAGS (\\Seen)", "BAD")
	rc.expect("STORE 1 +FLAGS (\\Seen", "BAD")
}
