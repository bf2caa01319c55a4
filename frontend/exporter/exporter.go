// Package exporter writes a Strata account's mail out as Maildir++ or mbox files
// (`strata export`), reading metadata through gRPC and bodies from the blob store, as the
// frontends do.
//
// Invariants:
//
//   - The account is only read.
//   - Every message is written with its flags, keywords and internal date as far as the
//     format holds them (frontend/mailfile); what it cannot hold is counted in the report
//     (Maildir: keywords beyond 26 per folder).
//   - A folder's messages are written in UID order; a message expunged while the export
//     runs is skipped, not an error.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/mailfile"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Format is a mail file format.
type Format string

const (
	Maildir Format = "maildir"
	Mbox    Format = "mbox"
)

// Config is one account's export.
type Config struct {
	Metadata metadatapb.MetadataClient
	Blobs    blobstore.Store
	Account  string
	Dir      string
	Format   Format
	Progress func(folder string, done, total int, bytes int64)
}

// FolderReport is what was written of one folder.
type FolderReport struct {
	Folder string
	// Messages of the folder when its listing was read, Written with Bytes, Gone (expunged
	// meanwhile), DroppedKeywords (Maildir: past 26).
	Messages, Written, Gone, DroppedKeywords int
	Bytes                                    int64
	Path                                     string
}

// Export writes every selectable mailbox of the account into cfg.Dir: for Maildir a
// Maildir++ tree (INBOX at the root, A/B in .A.B), for mbox one file per mailbox (A/B in
// A/B.mbox, INBOX in INBOX.mbox).
func Export(ctx context.Context, cfg Config) ([]FolderReport, error) {
	if cfg.Format != Maildir && cfg.Format != Mbox {
		return nil, fmt.Errorf("format %q: want maildir or mbox", cfg.Format)
	}
	list, err := cfg.Metadata.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: cfg.Account})
	if err != nil {
		return nil, fmt.Errorf("list mailboxes of %s: %w", cfg.Account, err)
	}
	var reports []FolderReport
	for _, box := range list.GetMailboxes() {
		if box.GetNoselect() {
			continue
		}
		rep, err := exportFolder(ctx, cfg, box)
		reports = append(reports, rep)
		if err != nil {
			return reports, fmt.Errorf("export %q: %w", box.GetName(), err)
		}
	}
	return reports, nil
}

// record is one message to write.
type record struct {
	uid   uint32
	key   string
	flags []string
	date  time.Time
	size  int64
}

func exportFolder(ctx context.Context, cfg Config, box *metadatapb.Mailbox) (FolderReport, error) {
	rep := FolderReport{Folder: box.GetName()}
	stream, err := cfg.Metadata.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
		Account: cfg.Account, MailboxId: box.GetId(), Uids: []*metadatapb.UidRange{{First: 1}},
	})
	if err != nil {
		return rep, err
	}
	var recs []record
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rep, err
		}
		recs = append(recs, record{uid: m.GetUid(), key: m.GetBlobKey(), flags: m.GetFlags(), date: time.Unix(m.GetInternalDateUnix(), 0), size: int64(m.GetSize())})
	}
	rep.Messages = len(recs)
	var write func(r record, body io.Reader) error
	var finish func() error
	switch cfg.Format {
	case Maildir:
		dir, err := mailfile.MaildirFolderDir(cfg.Dir, box.GetName())
		if err != nil {
			return rep, err
		}
		w, err := mailfile.NewMaildirWriter(dir)
		if err != nil {
			return rep, err
		}
		rep.Path = dir
		write = func(r record, body io.Reader) error { return w.Write(r.uid, r.date, r.flags, body) }
		finish = func() error {
			rep.DroppedKeywords = w.Dropped
			return w.Close()
		}
	default:
		path := filepath.Join(cfg.Dir, filepath.FromSlash(box.GetName())+".mbox")
		if strings.Contains("/"+box.GetName()+"/", "/../") {
			return rep, fmt.Errorf("mailbox name %q cannot be a file name", box.GetName())
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return rep, err
		}
		file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return rep, err
		}
		defer file.Close()
		rep.Path = path
		w := mailfile.NewMboxWriter(file)
		write = func(r record, body io.Reader) error { return w.Write(r.date, r.flags, body) }
		finish = func() error {
			if err := w.Flush(); err != nil {
				return err
			}
			if err := file.Sync(); err != nil {
				return err
			}
			return file.Close()
		}
	}
	for _, r := range recs {
		body, err := cfg.Blobs.Get(ctx, r.key, 0, -1)
		if errors.Is(err, blobstore.ErrNotFound) {
			rep.Gone++ // expunged and collected meanwhile
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("read the body of UID %d: %w", r.uid, err)
		}
		err = write(r, body)
		body.Close()
		if err != nil {
			return rep, fmt.Errorf("write UID %d: %w", r.uid, err)
		}
		rep.Written++
		rep.Bytes += r.size
		if cfg.Progress != nil {
			cfg.Progress(box.GetName(), rep.Written+rep.Gone, len(recs), rep.Bytes)
		}
	}
	return rep, finish()
}
