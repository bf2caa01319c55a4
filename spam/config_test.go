package spam_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/rspamdtest"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/spam"
)

// TestConfig: the zero Config turns both parts off; flags that only make sense with
// another are refused; the password is the file's first line.
func TestConfig(t *testing.T) {
	if c, err := (spam.Config{}).NewChecker(); c != nil || err != nil {
		t.Errorf("zero Config: checker %v, %v", c, err)
	}
	if l, err := (spam.Config{}).NewLearner(nil); l != nil || err != nil {
		t.Errorf("zero Config: learner %v, %v", l, err)
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (spam.Config{FailClosed: true}).NewChecker(); err == nil {
		t.Error("--rspamd-fail-closed without --rspamd-url accepted")
	}
	for _, c := range []spam.Config{
		{PasswordFile: empty},
		{ControllerURL: "http://127.0.0.1:1", PasswordFile: filepath.Join(dir, "missing")},
		{ControllerURL: "http://127.0.0.1:1", PasswordFile: empty},
	} {
		if l, err := c.NewLearner(nil); err == nil {
			l.Close()
			t.Errorf("NewLearner(%+v) accepted", c)
		}
	}
	srv := rspamd(t)
	password := filepath.Join(dir, "password")
	if err := os.WriteFile(password, []byte(rspamdtest.Password+"\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := (spam.Config{ControllerURL: srv.ControllerURL, PasswordFile: password}).NewLearner(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var calls atomic.Int64
	l.Learn(true, "demo@example.com", opener(message("config", "learn with the password from a file"), &calls))
	testwait.Until(t, time.Minute, func() error {
		if st := l.Stats(); st.LearnedSpam != 1 {
			return fmt.Errorf("stats %+v, want 1 spam learnt", st)
		}
		return nil
	})
}
