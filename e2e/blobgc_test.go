package e2e

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/s3test"
)

// TestBlobGCCommand runs `strata serve` on versitygw without the periodic pass, expunges one
// of two messages and runs `strata blob gc`: within the grace period nothing is deleted;
// after it the expunged message's object is gone from the bucket and the other message is
// still served.
func TestBlobGCCommand(t *testing.T) {
	gw := s3test.Start(t, s3test.Options{})
	t.Setenv(s3.EnvAccessKey, gw.AccessKey)
	t.Setenv(s3.EnvSecretKey, gw.SecretKey)
	const bucket = "strata-gc"
	strata := startServe(t, t.TempDir(), "--blob", "s3", "--s3-endpoint", gw.Endpoint, "--s3-bucket", bucket,
		"--s3-insecure", "--s3-path-style", "--blob-gc-interval", "-1s")
	c := strata.login(t)
	gone, kept := testMessage(1), testMessage(2)
	if _, err := appendMessage(c, "INBOX", gone, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	keptUID, err := appendMessage(c, "INBOX", kept, nil)
	if err != nil {
		t.Fatal(err)
	}
	gc := func(grace string) string {
		t.Helper()
		out, err := exec.Command(strataBin, "blob", "gc", "--grace", grace, "--server", strata.grpcAddr).CombinedOutput()
		if err != nil {
			t.Fatalf("strata blob gc: %v\n%s", err, out)
		}
		return string(out)
	}
	goneObject := gw.ObjectPath(bucket, blobstore.Key(embeddedDemoTenant, sha256.Sum256(gone)))
	if out := gc("1h"); !strings.Contains(out, "deleted 0 ") {
		t.Fatalf("within the grace period: %q", out)
	}
	if _, err := os.Stat(goneObject); err != nil {
		t.Fatalf("object deleted within the grace period: %v", err)
	}
	if out := gc("1ns"); !strings.Contains(out, "deleted 1 ") {
		t.Fatalf("after the grace period: %q", out)
	}
	if _, err := os.Stat(goneObject); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("object of the expunged message: %v, want it deleted", err)
	}
	checkFetch(t, strata.login(t), keptUID, kept)
}
