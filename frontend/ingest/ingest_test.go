package ingest_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/ingest"
)

// TestNewMessage checks that a spooled message becomes the metadata form keyed by its
// content under the tenant, with its structure and thread keys parsed once.
func TestNewMessage(t *testing.T) {
	msg := "Subject: Re: hello\r\nMessage-ID: <a@example.org>\r\nIn-Reply-To: <b@example.org>\r\n\r\nbody\r\n"
	spool, err := blobstore.NewSpillingSpool(t.TempDir(), 16, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	if _, err := spool.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	nm, err := ingest.NewMessage("acme", spool, date, []string{`\Seen`})
	if err != nil {
		t.Fatal(err)
	}
	if want := blobstore.Key("acme", sha256.Sum256([]byte(msg))); nm.GetBlobKey() != want {
		t.Errorf("key %s, want %s", nm.GetBlobKey(), want)
	}
	if nm.GetSize() != uint64(len(msg)) || nm.GetInternalDateUnix() != date.Unix() || len(nm.GetFlags()) != 1 {
		t.Errorf("size %d, date %d, flags %v", nm.GetSize(), nm.GetInternalDateUnix(), nm.GetFlags())
	}
	if nm.GetStructure().GetEnvelope().GetSubject() != "Re: hello" {
		t.Errorf("envelope subject %q", nm.GetStructure().GetEnvelope().GetSubject())
	}
	if th := nm.GetThread(); th.GetMessageId() != "a@example.org" || len(th.GetReferences()) != 1 || th.GetReferences()[0] != "b@example.org" {
		t.Errorf("thread keys %v", th)
	}
}
