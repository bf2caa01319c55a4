package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-mail/strata/frontend/exporter"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// `strata import` and `strata export` (issue 16): mail files in and out of an account
// (frontend/importer, frontend/exporter, frontend/mailfile).

func newImportCommand() *cobra.Command {
	cmd := verbGroup("import", "Import mail files (mbox, Maildir) into an account",
		`Import mail files into an account, written as the frontends write them (bodies into the blob
store, then metadata): --blob flags as for 'strata frontend' (--blob fs needs --blob-dir, e.g.
<data>/blobs of 'strata serve'), and --server or --etcd with the cluster administrator's
identity. A message already in the mailbox (the same bytes) is skipped, so running the same
import again adds nothing and completes an interrupted one. See docs/migration.md.`, importVerbs)
	addServerFlag(cmd)
	return cmd
}

var importVerbs = []adminVerb{
	{
		use:   "maildir PATH --to EMAIL [--mailbox NAME]",
		short: "Import a Maildir++ tree (INBOX and its .Folders), or with --mailbox one Maildir",
		long: `Import a Maildir++ tree: PATH is INBOX, PATH/.A.B the folder A/B. With --mailbox, PATH is
one Maildir imported into NAME. Flags come from the file names (":2,DFPRST": \Draft,
\Flagged, $Forwarded, \Answered, \Seen, \Deleted), keywords from Dovecot's letters a to z and
each folder's dovecot-keywords file, internal dates from the files' modification times.`,
		args:  cobra.ExactArgs(1),
		flags: importFlags,
		local: func(cmd *cobra.Command, args []string) error { return runImport(cmd, args[0], false) },
	},
	{
		use:   "mbox PATH --to EMAIL [--mailbox NAME]",
		short: "Import an mbox file into a mailbox (INBOX unless --mailbox)",
		long: `Import an mbox file (mboxrd and mboxo: ">From " lines lose one '>'). The internal dates come
from the From_ lines, the flags from Status (R: \Seen), X-Status (A, F, T, D: \Answered,
\Flagged, \Draft, \Deleted) and X-Keywords, which are removed from the messages with the other
mail-store fields (X-UID, X-IMAP, X-IMAPbase).`,
		args:  cobra.ExactArgs(1),
		flags: importFlags,
		local: func(cmd *cobra.Command, args []string) error { return runImport(cmd, args[0], true) },
	},
}

func importFlags(f *pflag.FlagSet) {
	f.String("to", "", "target account (user@domain)")
	f.String("mailbox", "", "target mailbox (mbox: INBOX when empty; maildir: PATH is then one Maildir)")
	f.Int("batch", 64, "messages per metadata command")
	f.Int64("max-message-size", 64<<20, "largest message imported, in bytes; larger ones are reported")
	f.String("spool-dir", os.TempDir(), "directory for message bodies larger than 256 KiB while they are imported")
	addWriterFlags(f)
}

// addWriterFlags adds the blob store flags of the commands that write into Strata.
func addWriterFlags(f *pflag.FlagSet) {
	f.String("blob-dir", "", "directory of message bodies (--blob fs): <data>/blobs of 'strata serve', or the one every frontend shares")
	addBlobStoreFlags(f, "the directory --blob-dir")
}

func runImport(cmd *cobra.Command, path string, mbox bool) error {
	f := cmd.Flags()
	to, _ := f.GetString("to")
	if to == "" {
		return errors.New("--to EMAIL is required")
	}
	mailbox, _ := f.GetString("mailbox")
	var opts importer.FileOptions
	opts.Batch, _ = f.GetInt("batch")
	opts.MaxMessageSize, _ = f.GetInt64("max-message-size")
	opts.SpoolDir, _ = f.GetString("spool-dir")
	ctx, w, done, err := startWriting(cmd)
	if err != nil {
		return err
	}
	defer done()
	target, err := w.target(ctx, to)
	if err != nil {
		return err
	}
	board := newProgressBoard(cmd.ErrOrStderr())
	p := board.account(to)
	opts.Progress = accountProgressFunc(p)
	start := time.Now()
	var reports []*importer.FileReport
	if mbox {
		if mailbox == "" {
			mailbox = "INBOX"
		}
		var rep *importer.FileReport
		rep, err = target.ImportMbox(ctx, path, mailbox, opts)
		if rep != nil {
			reports = append(reports, rep)
		}
	} else {
		reports, err = target.ImportMaildir(ctx, path, mailbox, opts)
	}
	endProgress(board, p, err)
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tREAD\tIMPORTED\tSKIPPED\tBEFORE\tAFTER\tCHECK")
	var messages, problems int
	var bytes int64
	for _, r := range reports {
		check := "ok"
		if r.After != r.Before+uint32(r.Imported) {
			check = "DIFFERS"
			problems++
		}
		messages += r.Imported
		bytes += r.Bytes
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Folder, r.Read, r.Imported, r.Skipped, r.Before, r.After, check)
	}
	tw.Flush()
	printRate(out, messages, bytes, time.Since(start))
	for _, r := range reports {
		for _, fl := range r.Failures {
			problems++
			fmt.Fprintf(out, "not imported: %s\n", fl)
		}
	}
	if err != nil {
		return err
	}
	if problems > 0 {
		return fmt.Errorf("%d problems, listed above", problems)
	}
	return nil
}

// startWriting opens the writer of the flags with a context that ends on SIGINT or SIGTERM.
func startWriting(cmd *cobra.Command) (context.Context, *writer, func(), error) {
	level, _ := cmd.Flags().GetString("log-level")
	logger, err := newLogger(level)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	w, err := openWriter(ctx, cmd, logger)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ctx, w, func() { w.close(); stop() }, nil
}

// endProgress ends an account's progress with its outcome and lets the bars draw.
func endProgress(board progressBoard, p accountProgress, err error) {
	if err != nil {
		p.finish("failed: " + err.Error())
	} else {
		p.finish("done")
	}
	board.wait()
}

// accountProgressFunc turns per-folder progress into an account's running totals.
func accountProgressFunc(p accountProgress) func(importer.Progress) {
	var base, lastTotal int
	lastFolder := ""
	return func(pr importer.Progress) {
		if pr.Folder != lastFolder {
			base += lastTotal
			lastFolder = pr.Folder
		}
		lastTotal = pr.Total
		p.update(pr.Folder, base+pr.Done, base+pr.Total, pr.Bytes)
	}
}

func printRate(out io.Writer, messages int, bytes int64, elapsed time.Duration) {
	secs := elapsed.Seconds()
	fmt.Fprintf(out, "\n%d messages, %.1f MiB in %s (%.0f messages/s, %.1f MB/s)\n",
		messages, float64(bytes)/(1<<20), elapsed.Round(time.Millisecond), float64(messages)/secs, float64(bytes)/1e6/secs)
}

var exportVerb = adminVerb{
	use:   "export EMAIL --to DIR --format maildir|mbox",
	short: "Write an account's mail out as a Maildir++ tree or mbox files",
	long: `Write every mailbox of an account into DIR: --format maildir makes a Maildir++ tree (INBOX at
DIR, A/B in DIR/.A.B, flags in the file names, keywords in dovecot-keywords, internal dates as
file times); --format mbox one mboxrd file per mailbox (A/B in DIR/A/B.mbox) with the flags
in Status, X-Status and X-Keywords. Bodies are read from the blob store (--blob flags as for
'strata frontend'), metadata through --server or --etcd.`,
	args: cobra.ExactArgs(1),
	flags: func(f *pflag.FlagSet) {
		f.String("to", "", "directory to write into (created; an mbox file that exists is not overwritten)")
		f.String("format", "maildir", "maildir or mbox")
		addWriterFlags(f)
	},
	local: runExport,
}

func newExportCommand() *cobra.Command {
	cmd := exportVerb.command()
	addServerFlag(cmd)
	return cmd
}

func runExport(cmd *cobra.Command, args []string) error {
	f := cmd.Flags()
	dir, _ := f.GetString("to")
	format, _ := f.GetString("format")
	if dir == "" {
		return errors.New("--to DIR is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ctx, w, done, err := startWriting(cmd)
	if err != nil {
		return err
	}
	defer done()
	account, err := w.md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: args[0]})
	if err != nil {
		return fmt.Errorf("look up %s: %w", args[0], err)
	}
	board := newProgressBoard(cmd.ErrOrStderr())
	p := board.account(account.GetEmail())
	progress := accountProgressFunc(p)
	start := time.Now()
	reports, err := exporter.Export(ctx, exporter.Config{
		Metadata: w.md, Blobs: w.committer.Blobs, Account: account.GetEmail(), Dir: dir, Format: exporter.Format(format),
		Progress: func(folder string, done, total int, bytes int64) {
			progress(importer.Progress{Folder: folder, Done: done, Total: total, Bytes: bytes})
		},
	})
	endProgress(board, p, err)
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tMESSAGES\tWRITTEN\tGONE\tKEYWORDS-DROPPED\tPATH")
	var messages int
	var bytes int64
	for _, r := range reports {
		messages += r.Written
		bytes += r.Bytes
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", r.Folder, r.Messages, r.Written, r.Gone, r.DroppedKeywords, r.Path)
	}
	tw.Flush()
	printRate(out, messages, bytes, time.Since(start))
	return err
}
