package e2e

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/blobstore/s3"
	"github.com/strata-mail/strata/internal/s3test"
)

// TestServeWithS3 runs `strata serve --blob s3` against versitygw with the credentials in
// the environment, APPENDs a message, FETCHes it whole and in part, checks that its body is
// the object under its content hash in the bucket and not in the data directory, and that it
// is still served after a restart of the server.
func TestServeWithS3(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{})
	t.Setenv(s3.EnvAccessKey, srv.AccessKey)
	t.Setenv(s3.EnvSecretKey, srv.SecretKey)
	const bucket = "strata-e2e"
	args := []string{"--blob", "s3", "--s3-endpoint", srv.Endpoint, "--s3-bucket", bucket, "--s3-insecure", "--s3-path-style"}
	dataDir := t.TempDir()
	strata := startServe(t, dataDir, args...)

	body := testMessage(1)
	uid, err := appendMessage(strata.login(t), "INBOX", body, nil)
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	checkFetch(t, strata.login(t), uid, body)

	object := srv.ObjectPath(bucket, blobstore.Key(embeddedDemoTenant, sha256.Sum256(body)))
	if stored, err := os.ReadFile(object); err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("object %s in the bucket: %q, %v; want the message", object, stored, err)
	}
	if entries, err := os.ReadDir(filepath.Join(dataDir, "blobs")); err == nil && len(entries) > 0 {
		t.Errorf("the data directory's blobs/ holds %d entries with --blob s3", len(entries))
	}

	strata.kill(syscall.SIGTERM)
	strata = startServe(t, dataDir, args...)
	checkFetch(t, strata.login(t), uid, body)
}

// embeddedDemoTenant is the tenant of demo@example.com that `strata serve` creates.
const embeddedDemoTenant = "example"

// checkFetch FETCHes uid from INBOX whole and bytes 10 to 29 of it, and compares with body.
func checkFetch(t *testing.T, c *imapclient.Client, uid uint32, body []byte) {
	t.Helper()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	part := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 10, Size: 20}}
	msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{whole, part},
	}).Collect()
	if err != nil {
		t.Fatalf("UID FETCH %d: %v", uid, err)
	}
	if len(msgs) != 1 {
		t.Fatalf("UID FETCH %d returned %d messages", uid, len(msgs))
	}
	if got := msgs[0].FindBodySection(whole); !bytes.Equal(got, body) {
		t.Errorf("BODY[] = %q, want %q", got, body)
	}
	if got := msgs[0].FindBodySection(part); !bytes.Equal(got, body[10:30]) {
		t.Errorf("BODY[]<10.20> = %q, want %q", got, body[10:30])
	}
}
