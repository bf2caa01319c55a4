package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/frontend/mailfile"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Importing mail files (`strata import`): Maildir and mbox through frontend/mailfile. A
// message whose body is already in the target mailbox (the same blob key: the same bytes)
// is skipped, so importing the same files again adds nothing and an interrupted import is
// completed by running it again.

// FileOptions configure an import of mail files.
type FileOptions struct {
	Batch          int   // messages per ImportMessages command; default 64
	MaxMessageSize int64 // default 64 MiB
	SpoolDir       string
	Progress       func(Progress)
}

// Progress is reported after each committed batch: Done of Total messages of Folder (for an
// mbox, whose count is known at its end, Total grows with Done), Bytes imported.
type Progress struct {
	Folder      string
	Done, Total int
	Bytes       int64
}

// FileReport is what an import did in one folder.
type FileReport struct {
	Folder string
	// Read messages; Imported of them with Bytes; Skipped, already in the mailbox.
	Read, Imported, Skipped int
	Bytes                   int64
	// Before and After are the mailbox's message counts; After = Before + Imported unless
	// mail arrived meanwhile.
	Before, After uint32
	Failures      []string
}

func (o *FileOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 20
	}
}

// folderImport adds the messages of one folder in batches.
type folderImport struct {
	t       *Target
	opts    FileOptions
	box     *metadatapb.Mailbox
	present map[string]bool
	batch   []Message
	total   int
	// inflight reports the commit of the batch before, nil when none runs; it updates rep
	// under mu.
	inflight chan error
	mu       sync.Mutex
	rep      *FileReport
}

func (t *Target) startFolder(ctx context.Context, name string, opts FileOptions, total int) (*folderImport, error) {
	box, err := t.EnsureMailbox(ctx, name, "")
	if err != nil {
		return nil, err
	}
	present, err := t.BlobKeys(ctx, box.GetId(), 1)
	if err != nil {
		return nil, err
	}
	return &folderImport{t: t, opts: opts, box: box, present: present, total: total,
		rep: &FileReport{Folder: name, Before: box.GetMessages()}}, nil
}

// add spools one message, which read writes and describes (io.EOF: no more), and commits
// the batch when full. A message over the size limit is reported and skipped.
func (f *folderImport) add(ctx context.Context, read func(io.Writer) (Message, string, error)) error {
	spool, err := blobstore.NewSpillingSpool(f.opts.SpoolDir, 256<<10, f.opts.MaxMessageSize+1)
	if err != nil {
		return err
	}
	m, where, err := read(spool)
	if errors.Is(err, io.EOF) {
		spool.Close()
		return io.EOF
	}
	f.mu.Lock()
	f.rep.Read++
	f.mu.Unlock()
	if err != nil {
		spool.Close()
		if errors.Is(err, mailfile.ErrTooLarge) {
			f.mu.Lock()
			f.rep.Failures = append(f.rep.Failures, fmt.Sprintf("%s: %v", where, err))
			f.mu.Unlock()
			return nil
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	key := f.t.Key(spool)
	if f.present[key] {
		spool.Close()
		f.mu.Lock()
		f.rep.Skipped++
		f.mu.Unlock()
		return nil
	}
	f.present[key] = true
	m.Body = spool
	f.batch = append(f.batch, m)
	if len(f.batch) >= f.opts.Batch {
		return f.commit(ctx)
	}
	return nil
}

// commit starts committing the batch, once the one before is committed: reading the next
// batch overlaps the commit of this one.
func (f *folderImport) commit(ctx context.Context) error {
	if err := f.wait(); err != nil {
		return err
	}
	if len(f.batch) == 0 {
		return nil
	}
	batch := f.batch
	f.batch = nil
	done := make(chan error, 1)
	f.inflight = done
	go func() {
		defer func() {
			for _, m := range batch {
				m.Body.Close()
			}
		}()
		if _, err := f.t.Import(ctx, f.box.GetId(), batch, false, 0); err != nil {
			done <- err
			return
		}
		f.mu.Lock()
		for _, m := range batch {
			f.rep.Imported++
			f.rep.Bytes += m.Body.Size()
		}
		p := Progress{Folder: f.rep.Folder, Done: f.rep.Imported + f.rep.Skipped + len(f.rep.Failures), Total: max(f.total, f.rep.Read), Bytes: f.rep.Bytes}
		f.mu.Unlock()
		if f.opts.Progress != nil {
			f.opts.Progress(p)
		}
		done <- nil
	}()
	return nil
}

// wait waits for the batch being committed.
func (f *folderImport) wait() error {
	if f.inflight == nil {
		return nil
	}
	err := <-f.inflight
	f.inflight = nil
	return err
}

func (f *folderImport) finish(ctx context.Context) (*FileReport, error) {
	if err := f.commit(ctx); err != nil {
		return f.rep, err
	}
	if err := f.wait(); err != nil {
		return f.rep, err
	}
	box, err := f.t.Mailbox(ctx, f.box.GetName())
	if err != nil {
		return f.rep, err
	}
	if box != nil {
		f.rep.After = box.GetMessages()
	}
	return f.rep, nil
}

// ImportMaildir imports the Maildir++ tree at root (INBOX and its folders), or with
// mailbox set only the Maildir at root, into that mailbox.
func (t *Target) ImportMaildir(ctx context.Context, root, mailbox string, opts FileOptions) ([]*FileReport, error) {
	opts.defaults()
	folders := []mailfile.MaildirFolder{{Name: mailbox, Dir: root}}
	if mailbox == "" {
		var err error
		if folders, err = mailfile.MaildirFolders(root); err != nil {
			return nil, err
		}
	}
	var reports []*FileReport
	for _, folder := range folders {
		msgs, err := mailfile.MaildirMessages(folder.Dir)
		if err != nil {
			return reports, err
		}
		fi, err := t.startFolder(ctx, folder.Name, opts, len(msgs))
		if err != nil {
			return reports, err
		}
		reports = append(reports, fi.rep)
		for _, m := range msgs {
			read := func(w io.Writer) (Message, string, error) {
				file, err := os.Open(m.Path)
				if errors.Is(err, os.ErrNotExist) {
					return Message{}, m.Path, fmt.Errorf("gone meanwhile: %w", mailfile.ErrTooLarge)
				}
				if err != nil {
					return Message{}, m.Path, err
				}
				defer file.Close()
				return Message{Date: m.Date, Flags: m.Flags}, m.Path, mailfile.CopyCRLF(w, file, opts.MaxMessageSize)
			}
			if err := fi.add(ctx, read); err != nil {
				fi.wait()
				return reports, err
			}
		}
		if _, err := fi.finish(ctx); err != nil {
			return reports, err
		}
	}
	return reports, nil
}

// ImportMbox imports the mbox file path into mailbox.
func (t *Target) ImportMbox(ctx context.Context, path, mailbox string, opts FileOptions) (*FileReport, error) {
	opts.defaults()
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := t.startFolder(ctx, mailbox, opts, 0)
	if err != nil {
		return nil, err
	}
	var modTime time.Time
	if st, err := file.Stat(); err == nil {
		modTime = st.ModTime()
	}
	r := mailfile.NewMboxReader(file)
	read := func(w io.Writer) (Message, string, error) {
		msg, err := r.Next(w, opts.MaxMessageSize)
		m := Message{Date: msg.Date, Flags: msg.Flags}
		if m.Date.IsZero() {
			m.Date = modTime // a From_ line without a date that parses
		}
		return m, fmt.Sprintf("%s line %d", path, msg.Line), err
	}
	for {
		err := fi.add(ctx, read)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fi.wait()
			return fi.rep, err
		}
	}
	return fi.finish(ctx)
}
