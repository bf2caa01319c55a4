package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/internal/testwait"
)

// TestACLRevocationAcrossFrontends: u shares Team with v through frontend A while v has it
// selected through frontend B, whose sessions take their rights from the change feed
// (issue 14, frontend/imap/acl.go). A right u revokes on A is refused to v on B at v's
// next command that needs it, since the metadata service checks every write against the
// rights in force; a right u grants again reaches v through B's feed; and losing r ends v's
// session through it (RFC 4314 4: SELECT needs r).
func TestACLRevocationAcrossFrontends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	etcd, _ := startVoters(t, ctx)
	addClusterAccount(t, etcd)
	clusterAdmin(t, etcd, "user", "add", "v@acme.test", "--password", "pw")
	blobDir := t.TempDir()
	feA := startFrontend(t, "A", etcd, "--blob-dir", blobDir)
	feB := startFrontend(t, "B", etcd, "--blob-dir", blobDir)

	login := func(addr, user string) *imapclient.Client {
		t.Helper()
		var c *imapclient.Client
		// The frontends learn the metadata nodes from etcd just after they start.
		testwait.Until(t, 30*time.Second, func() error {
			var err error
			if c, err = imapclient.DialInsecure(addr, nil); err != nil {
				return err
			}
			if err = c.Login(user, "pw").Wait(); err != nil {
				c.Close()
				return err
			}
			return nil
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	u := login(feA.imapAddr, "u@acme.test")
	v := login(feB.imapAddr, "v@acme.test")
	setACL := func(rights string) {
		t.Helper()
		mod, set := imap.RightModificationReplace, rights
		if rights[0] == '+' || rights[0] == '-' {
			mod, set = imap.RightModification(rights[0]), rights[1:]
		}
		if err := u.SetACL("Team", "v@acme.test", mod, imap.RightSet(set)).Wait(); err != nil {
			t.Fatalf("SETACL Team v@acme.test %s: %v", rights, err)
		}
	}
	store := func(flag imap.Flag) error {
		return v.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil).Close()
	}

	if err := u.Create("Team", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := "From: u@acme.test\r\nSubject: team\r\n\r\nfor the team\r\n"
	app := u.Append("Team", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	setACL("lrsw")
	if _, err := v.Select("Other Users/u@acme.test/Team", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := store(imap.FlagFlagged); err != nil {
		t.Fatalf("STORE with w: %v", err)
	}

	setACL("-w")
	var imapErr *imap.Error
	if err := store(imap.FlagAnswered); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeNoPerm {
		t.Fatalf("STORE on B right after A took w: %v, want NO [NOPERM]", err)
	}
	if err := store(imap.FlagSeen); err != nil {
		t.Fatalf("STORE \\Seen with s: %v", err)
	}

	setACL("+w")
	testwait.Until(t, 10*time.Second, func() error {
		if err := store(imap.FlagAnswered); err != nil {
			return fmt.Errorf("STORE on B after A granted w again: %w", err)
		}
		return nil
	})

	setACL("-r")
	testwait.Until(t, 10*time.Second, func() error {
		if err := v.Noop().Wait(); err == nil {
			return errors.New("v's session on B goes on after A took r")
		}
		return nil
	})
	// The server said BYE and closed the connection (RFC 9051 7.1.5).
	if state := v.State(); state != imap.ConnStateLogout {
		t.Fatalf("v's connection to B in state %v after A took r, want logout", state)
	}
}
