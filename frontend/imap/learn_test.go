package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/rspamdtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/spam"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopSortBench()         // started by the First sort benchmarks only
	rspamdtest.StopShared() // started by the spam learning tests only
	os.Exit(code)
}

// TestSpamLearning: filing over IMAP teaches a real rspamd. MOVE or COPY into \Junk and
// STORE +FLAGS $Junk learn spam; STORE $NotJunk and MOVE out of \Junk into a mailbox other
// than \Trash learn ham; moves between other mailboxes, out of Junk into Trash and a
// $Junk already set learn nothing. Each command has queued its messages when it returns
// (Accepted); rspamd's own counters show what it learnt: the message copied into Junk
// and then moved back to INBOX is relearnt by rspamd, from spam to ham.
func TestSpamLearning(t *testing.T) {
	rs, err := rspamdtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(t.TempDir(), "rspamd-password")
	if err := os.WriteFile(passwordFile, []byte(rspamdtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServerWith(t, func(c *embedded.Config) {
		c.Rspamd = spam.Config{ControllerURL: rs.ControllerURL, PasswordFile: passwordFile}
	})
	learner := srv.SpamLearner()
	if learner == nil {
		t.Fatal("no learner with a controller URL")
	}
	spamBefore, err := rs.Learns(true)
	if err != nil {
		t.Fatal(err)
	}
	hamBefore, err := rs.Learns(false)
	if err != nil {
		t.Fatal(err)
	}
	c := login(t, srv)
	stamp := time.Now().UnixNano()
	for i := 1; i <= 4; i++ {
		appendMessage(t, c, "INBOX", testMessage(fmt.Sprintf("learn %d %d", i, stamp),
			fmt.Sprintf("Message %d of the learning test %d, with enough words to learn from.", i, stamp)))
	}
	rc := loginRaw(t, srv)
	accepted := func(step string, want uint64) {
		t.Helper()
		if got := learner.Stats().Accepted; got != want {
			t.Errorf("after %s: %d messages queued for learning, want %d", step, got, want)
		}
	}
	rc.ok("CREATE Other")
	rc.ok("SELECT INBOX")
	rc.ok("UID MOVE 1 Junk")
	accepted("MOVE into Junk", 1)
	rc.ok("UID COPY 2 Junk")
	accepted("COPY into Junk", 2)
	rc.ok("UID COPY 2 Other")
	accepted("COPY into Other", 2)
	rc.ok("UID STORE 3 +FLAGS.SILENT ($Junk)")
	accepted("STORE +FLAGS $Junk", 3)
	rc.ok("UID STORE 3 +FLAGS.SILENT ($Junk)")
	accepted("STORE +FLAGS $Junk again", 3)
	rc.ok("UID STORE 4 FLAGS.SILENT (\\Seen $NotJunk)")
	accepted("STORE FLAGS $NotJunk", 4)
	rc.ok("UID STORE 4 -FLAGS.SILENT ($NotJunk)")
	accepted("STORE -FLAGS $NotJunk", 4)
	rc.ok("SELECT Junk")
	rc.ok("UID MOVE 1 Trash")
	accepted("MOVE from Junk into Trash", 4)
	rc.ok("UID MOVE 2 INBOX")
	accepted("MOVE from Junk into INBOX", 5)

	testwait.Until(t, 2*time.Minute, func() error {
		if st := learner.Stats(); st.LearnedSpam != 3 || st.LearnedHam != 2 {
			return fmt.Errorf("learner stats %+v, want 3 spam and 2 ham learnt", st)
		}
		return nil
	})
	if st := learner.Stats(); st.Failures != 0 || st.Dropped != 0 || st.Skipped != 0 {
		t.Errorf("learner stats %+v", st)
	}
	if got, err := rs.Learns(true); err != nil || got != spamBefore+2 {
		t.Errorf("rspamd learns_spam = %d, %v; want %d", got, err, spamBefore+2)
	}
	if got, err := rs.Learns(false); err != nil || got != hamBefore+2 {
		t.Errorf("rspamd learns_ham = %d, %v; want %d", got, err, hamBefore+2)
	}
}

// TestSpamLearningUnreachable: a controller that cannot be reached costs the command
// nothing: the MOVE completes and its message waits in the learner for a retry.
func TestSpamLearningUnreachable(t *testing.T) {
	srv := startServerWith(t, func(c *embedded.Config) {
		c.Rspamd = spam.Config{ControllerURL: "http://127.0.0.1:1"}
	})
	c := login(t, srv)
	appendMessage(t, c, "INBOX", testMessage("unreachable", "body"))
	rc := loginRaw(t, srv)
	rc.ok("SELECT INBOX")
	rc.ok("UID MOVE 1 Junk")
	if st := srv.SpamLearner().Stats(); st.Accepted != 1 {
		t.Errorf("learner stats %+v, want 1 accepted", st)
	}
	if st := startServer(t).SpamLearner(); st != nil {
		t.Errorf("a server without rspamd has a learner")
	}
}
