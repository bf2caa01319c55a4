package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strata-mail/strata/frontend/mailfile"
)

// TestWriteMaildirReadsBackAsTheCorpus: the Maildir, read as `strata import maildir` reads
// it (frontend/mailfile), holds the corpus messages in order, byte for byte with CRLF,
// with their flags and the internal dates one second apart; a second run with First
// grows it on.
func TestWriteMaildirReadsBackAsTheCorpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	corpus := Corpus{Seed: 7, MaxSize: 16 << 10}
	received := time.Unix(1_700_000_000, 0)
	cfg := MaildirConfig{Dir: dir, Messages: 150, Corpus: corpus, Workers: 3, UID: -1, Received: received}
	if _, err := WriteMaildir(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.First, cfg.Messages = 150, 50
	rep, err := WriteMaildir(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 50 {
		t.Fatalf("second run wrote %d messages, want 50", rep.Messages)
	}
	msgs, err := mailfile.MaildirMessages(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 200 {
		t.Fatalf("%d messages in the Maildir, want 200", len(msgs))
	}
	for i, m := range msgs {
		f, err := os.Open(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		err = mailfile.CopyCRLF(&got, f, 1<<20)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := corpus.Message(0, i); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("message %d (%s) differs from the corpus: %d bytes, want %d", i, m.Path, got.Len(), len(want))
		}
		want := corpus.Flags(0, i)
		got2 := slices.Clone(m.Flags)
		slices.Sort(got2)
		slices.Sort(want)
		if !slices.Equal(got2, want) {
			t.Fatalf("message %d flags %v, want %v", i, m.Flags, want)
		}
		if !m.Date.Equal(received.Add(time.Duration(i) * time.Second)) {
			t.Fatalf("message %d internal date %v, want %v", i, m.Date, received.Add(time.Duration(i)*time.Second))
		}
	}
	tmp, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("tmp/ holds %d files after the run", len(tmp))
	}
}
