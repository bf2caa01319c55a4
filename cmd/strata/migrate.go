package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/strata-mail/strata/blobstore"
	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/frontend/ingest"
	"github.com/strata-mail/strata/frontend/migrate"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// `strata migrate` (issue 16): copy accounts from another IMAP server (frontend/migrate).

// migratePasswordEnv holds the source password when no --password-file is given.
const migratePasswordEnv = "STRATA_MIGRATE_PASSWORD"

var migrateVerb = adminVerb{
	use:   "migrate --from imaps://user@host[:port] --to EMAIL | --from imaps://host[:port] --accounts FILE",
	short: "Copy accounts from another IMAP server, resumable and incremental, keeping UIDs",
	long: `Copy every folder of an account on another IMAP server (Dovecot, a hosted service) into a
Strata account: messages byte for byte with their flags, keywords and internal dates, the
folders' special use and the subscriptions. A Strata mailbox that never held a message takes
the source folder's UIDVALIDITY and each message its UID, so mail clients that synced from
the old server download nothing again. Run it again to copy what is new and apply flag
changes and expunges (see docs/migration.md); an interrupted run resumes where it stopped.

The source is imaps://user@host[:port] (implicit TLS), or imap://user@host[:port] with
STARTTLS; plaintext only with --insecure-plaintext. Its password comes from --password-file,
else $` + migratePasswordEnv + `, else a prompt on a terminal, else the first line of
standard input.

Bulk: --from names only the server and --accounts FILE lists one account per line,
"SOURCE-USER TARGET-EMAIL PASSWORD-FILE" (# starts a comment); --concurrency accounts are
copied at once.

Messages are written as the frontends write them: bodies into the blob store (the --blob
flags of 'strata frontend'; --blob fs needs --blob-dir, e.g. <data>/blobs of 'strata serve'),
then metadata through --server or --etcd with an administrator's identity: the cluster
administrator's, or a tenant administrator's (--token-file) for accounts of its tenant.`,
	args:  cobra.NoArgs,
	flags: migrateFlags,
	local: runMigrate,
}

func newMigrateCommand() *cobra.Command {
	cmd := migrateVerb.command()
	addServerFlag(cmd)
	return cmd
}

func migrateFlags(f *pflag.FlagSet) {
	f.String("from", "", "source server: imaps://user@host[:port] or imap://user@host[:port] (STARTTLS); without user with --accounts")
	f.String("to", "", "target account (user@domain)")
	f.String("accounts", "", `bulk: file of "SOURCE-USER TARGET-EMAIL PASSWORD-FILE" lines`)
	f.Int("concurrency", 4, "bulk: accounts copied at once")
	f.String("password-file", "", "file whose first line is the source password (else $"+migratePasswordEnv+", a prompt, or standard input)")
	f.Bool("insecure-plaintext", false, "with imap://, log in without TLS: the password crosses the network in the clear")
	f.String("source-ca-file", "", "PEM file of certificate authorities trusted for the source server, beside the system roots")
	f.Bool("keep-expunged", false, "do not apply expunges at the source to messages copied before")
	f.Int("batch", migrate.DefaultBatchMessages, "messages per metadata command")
	f.Int64("max-message-size", migrate.DefaultMaxMessageSize, "largest message copied, in bytes")
	f.String("spool-dir", os.TempDir(), "directory for message bodies larger than 256 KiB while they are copied")
	addWriterFlags(f)
}

// migrateJob is one account to copy.
type migrateJob struct {
	source       migrate.Source
	target       string
	passwordFile string
}

func runMigrate(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	level, _ := f.GetString("log-level")
	logger, err := newLogger(level)
	if err != nil {
		return err
	}
	jobs, err := migrateJobs(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w, err := openWriter(ctx, cmd, logger)
	if err != nil {
		return err
	}
	defer w.close()

	concurrency, _ := f.GetInt("concurrency")
	keepExpunged, _ := f.GetBool("keep-expunged")
	batch, _ := f.GetInt("batch")
	maxSize, _ := f.GetInt64("max-message-size")
	spoolDir, _ := f.GetString("spool-dir")
	board := newProgressBoard(cmd.ErrOrStderr())
	results := make([]migrateResult, len(jobs))
	sem := make(chan struct{}, max(1, concurrency))
	var wg sync.WaitGroup
	start := time.Now()
	for i, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = migrateOne(ctx, w, job, migrate.Config{
				Expunge: !keepExpunged, BatchMessages: batch, MaxMessageSize: maxSize, SpoolDir: spoolDir, Log: logger,
			}, board.account(job.target))
		}()
	}
	wg.Wait()
	board.wait()
	return printMigrateResults(cmd.OutOrStdout(), results, time.Since(start))
}

// migrateJobs reads the accounts to copy from the flags.
func migrateJobs(cmd *cobra.Command) ([]migrateJob, error) {
	f := cmd.Flags()
	from, _ := f.GetString("from")
	to, _ := f.GetString("to")
	list, _ := f.GetString("accounts")
	plaintext, _ := f.GetBool("insecure-plaintext")
	roots, err := rootCAsFromFlag(f, "source-ca-file")
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if roots != nil {
		tlsConfig = &tls.Config{RootCAs: roots}
	}
	if from == "" {
		return nil, errors.New("--from is required")
	}
	if list == "" {
		if to == "" {
			return nil, errors.New("give --to EMAIL, or --accounts FILE")
		}
		src, err := migrate.ParseSource(from, plaintext)
		if err != nil {
			return nil, err
		}
		src.TLSConfig = tlsConfig
		if src.Password, err = readSourcePassword(cmd); err != nil {
			return nil, err
		}
		return []migrateJob{{source: src, target: to}}, nil
	}
	if to != "" {
		return nil, errors.New("give --to or --accounts, not both")
	}
	file, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("--accounts: %w", err)
	}
	defer file.Close()
	lines, err := parseAccountList(file)
	if err != nil {
		return nil, fmt.Errorf("--accounts %s: %w", list, err)
	}
	scheme, host, ok := strings.Cut(from, "://")
	if !ok || strings.Contains(host, "@") {
		return nil, errors.New("with --accounts, --from names only the server: imaps://host[:port]")
	}
	var jobs []migrateJob
	for _, l := range lines {
		src, err := migrate.ParseSource(scheme+"://"+l.user+"@"+host, plaintext)
		if err != nil {
			return nil, fmt.Errorf("--accounts line %d: %w", l.line, err)
		}
		src.TLSConfig = tlsConfig
		pw, err := readPasswordFile(l.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--accounts line %d: %w", l.line, err)
		}
		src.Password = pw
		jobs = append(jobs, migrateJob{source: src, target: l.target, passwordFile: l.passwordFile})
	}
	return jobs, nil
}

// accountLine is one line of an --accounts file.
type accountLine struct {
	line                       int
	user, target, passwordFile string
}

// maxAccountLine bounds a line of an --accounts file.
const maxAccountLine = 4096

// parseAccountList reads "SOURCE-USER TARGET-EMAIL PASSWORD-FILE" lines; blank lines and
// those starting with # are skipped.
func parseAccountList(r io.Reader) ([]accountLine, error) {
	var out []accountLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxAccountLine)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want SOURCE-USER TARGET-EMAIL PASSWORD-FILE, got %d fields", n, len(fields))
		}
		if !strings.Contains(fields[1], "@") {
			return nil, fmt.Errorf("line %d: target %q is not user@domain", n, fields[1])
		}
		out = append(out, accountLine{line: n, user: fields[0], target: fields[1], passwordFile: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no account listed")
	}
	return out, nil
}

func readPasswordFile(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	pw, err := firstLine(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return pw, nil
}

// readSourcePassword reads the source password: --password-file, $STRATA_MIGRATE_PASSWORD,
// a prompt on a terminal, or the first line of standard input.
func readSourcePassword(cmd *cobra.Command) (string, error) {
	if path, _ := cmd.Flags().GetString("password-file"); path != "" {
		pw, err := readPasswordFile(path)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		return pw, nil
	}
	if pw := os.Getenv(migratePasswordEnv); pw != "" {
		return pw, nil
	}
	in := cmd.InOrStdin()
	if file, ok := in.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Source password: ")
		b, err := term.ReadPassword(int(file.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if len(b) == 0 {
			return "", errors.New("empty password")
		}
		return string(b), nil
	}
	pw, err := firstLine(in)
	if err != nil {
		return "", fmt.Errorf("source password from standard input: %w (or give --password-file)", err)
	}
	return pw, nil
}

// writer is what the import commands write through: the metadata service and the blob
// store, as a frontend has them.
type writer struct {
	md        metadatapb.MetadataClient
	committer *ingest.Committer
	log       *slog.Logger
	close     func()
}

// openWriter connects to the metadata service (--server or --etcd, admin identity) and
// opens the blob store (the --blob flags).
func openWriter(ctx context.Context, cmd *cobra.Command, logger *slog.Logger) (*writer, error) {
	f := cmd.Flags()
	blobDir, _ := f.GetString("blob-dir")
	if blob, _ := f.GetString("blob"); blob == "fs" && blobDir == "" {
		return nil, errors.New("--blob fs needs --blob-dir (<data>/blobs of 'strata serve'), or give --blob s3")
	}
	blobs, err := openBlobStoreFromFlags(ctx, f, blobDir, logger)
	if err != nil {
		return nil, err
	}
	md, closeClient, err := adminClient(ctx, cmd)
	if err != nil {
		closeBlobs(blobs)
		return nil, err
	}
	return &writer{
		md: md,
		committer: &ingest.Committer{
			Metadata: md, Blobs: blobs, Timeout: 2 * time.Minute, NewRequestID: embedded.NewRequestID,
		},
		log:   logger,
		close: func() { closeClient(); closeBlobs(blobs) },
	}, nil
}

func closeBlobs(blobs blobstore.Store) {
	if c, ok := blobs.(io.Closer); ok {
		c.Close()
	}
}

// target opens the account email for writing.
func (w *writer) target(ctx context.Context, email string) (*importer.Target, error) {
	return importer.Open(ctx, w.md, w.committer, email, w.log)
}

type migrateResult struct {
	job    migrateJob
	report *migrate.Report
	err    error
}

func migrateOne(ctx context.Context, w *writer, job migrateJob, cfg migrate.Config, p accountProgress) migrateResult {
	res := migrateResult{job: job}
	target, err := w.target(ctx, job.target)
	if err != nil {
		res.err = err
		p.finish("failed: " + err.Error())
		return res
	}
	cfg.Source, cfg.Target = job.source, target
	progress := accountProgressFunc(p)
	cfg.Progress = func(pr migrate.Progress) {
		progress(importer.Progress{Folder: pr.Folder, Done: pr.Done, Total: pr.Total, Bytes: pr.Bytes})
	}
	res.report, res.err = migrate.Run(ctx, cfg)
	switch {
	case res.err != nil:
		p.finish("failed: " + res.err.Error())
	default:
		copied, retried := 0, 0
		for _, f := range res.report.Folders {
			copied += f.Copied
			retried += f.Retried
		}
		p.finish(fmt.Sprintf("done: %d folders, %d messages copied (%d that failed before), %d not copied", len(res.report.Folders), copied, retried, len(res.report.Failures)))
	}
	return res
}

// printMigrateResults writes the per-folder counts and what could not be copied, and
// returns an error when anything failed or a count differs.
func printMigrateResults(out io.Writer, results []migrateResult, elapsed time.Duration) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tFOLDER\tSOURCE\tSTRATA\tCOPIED\tFLAGS\tEXPUNGED\tUIDS\tCHECK")
	bad := 0
	var messages int
	var bytes int64
	var failures []string
	for _, r := range results {
		if r.err != nil {
			bad++
			failures = append(failures, fmt.Sprintf("%s: %v", r.job.target, r.err))
		}
		if r.report == nil {
			continue
		}
		for _, f := range r.report.Folders {
			check, uids := "ok", "new"
			if f.SourceCount != f.TargetCount {
				check = "DIFFERS"
				bad++
			}
			if f.UIDsKept {
				uids = "kept"
			}
			messages += f.Copied
			bytes += f.Bytes
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", r.job.target, f.Target, f.SourceCount, f.TargetCount, f.Copied, f.FlagsUpdated, f.Expunged, uids, check)
		}
		for _, fl := range r.report.Failures {
			bad++
			failures = append(failures, fmt.Sprintf("%s: not copied: %s", r.job.target, fl))
		}
	}
	tw.Flush()
	printRate(out, messages, bytes, elapsed)
	for _, f := range failures {
		fmt.Fprintln(out, f)
	}
	if bad > 0 {
		return fmt.Errorf("%d problems, listed above", bad)
	}
	return nil
}
