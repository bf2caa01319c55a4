package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-mail/strata/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "IMAP load generator: mixed workload, login cycle, populate, big mailbox, idle connections",
		Long: `'strata bench' drives an IMAP server (Strata, Dovecot, any server with LITERAL+ and
UIDPLUS) with concurrent clients running a weighted mix of commands, checks every answer,
and prints per-command throughput, p50/p95/p99 latency and errors by kind.

Client i logs in as user i mod --users of --user-pattern. By default the clients run a
closed loop (each sends its next command when the last is answered); with --rate the run
is open-loop: operations are due at that rate in all (--arrivals poisson or uniform), each
taken by a free client and timed from when it was due, so that servers are compared at the
same offered load. Operations:
` + fmt.Sprint(bench.Operations) + `

Fill mailboxes first with 'strata bench populate'; create the users with 'strata bench users'.`,
		Args: cobra.NoArgs,
		RunE: runBenchMixed,
	}
	pf := cmd.PersistentFlags()
	pf.String("addr", "127.0.0.1:1143", "IMAP server address")
	pf.Bool("tls", false, "connect with TLS (IMAPS)")
	pf.Bool("insecure-skip-verify", false, "accept any TLS certificate")
	pf.Int("users", 1, "number of users")
	pf.String("user-pattern", "demo@example.com", `user names; %d is replaced by 1..--users (e.g. "bench%d@example.com")`)
	pf.String("password", "demo", `password of every user; "-": a prompt on a terminal, or the first line of standard input; discouraged for real accounts: it shows in ps and in shell history`)
	pf.String("password-file", "", "file whose first line is the password of every user (instead of --password)")
	pf.Uint64("seed", 1, "seed of the workload and the corpus")
	pf.String("json", "", "also write the report as JSON to this file")
	pf.String("label", "", "name of the server in reports (e.g. strata, dovecot)")
	pf.Duration("timeout", 0, "deadline of each command (default 2m)")
	pf.Int("max-size", 1<<20, "largest corpus message in bytes")

	f := cmd.Flags()
	f.Int("clients", 16, "concurrent clients")
	f.Duration("duration", 0, "how long to run (default 30s)")
	f.String("profile", bench.DefaultProfile, "operation weights")
	f.Int("range", 20, "messages per FETCH of flags and envelopes")
	f.Duration("idle-hold", 0, "time between IDLE and DONE (default 50ms)")
	f.Float64("rate", 0, "open loop: operations per second in all, each timed from its scheduled start (0: closed loop)")
	f.String("arrivals", bench.ArrivalsPoisson, "open loop: spacing of the scheduled starts, poisson or uniform")
	f.Bool("login-first", false, "log every client in before the clock starts, so that the run times its commands without the logins")
	f.Int("server-pid", 0, "PID of the server on this machine: its process tree's CPU time per operation is reported (server_cpu_us_per_op)")
	f.String("cpu-profile", "", "write a CPU profile of the load generator itself to this file (go tool pprof reads it)")

	cmd.AddCommand(newBenchCycleCommand(), newBenchPopulateCommand(), newBenchUsersCommand(), newBenchBigMailboxCommand(), newBenchResyncCommand(),
		newBenchIdleCommand(), newBenchLMTPCommand(), newBenchCompareCommand(), newBenchMaildirCommand())
	return cmd
}

// benchCommon reads the flags every bench subcommand shares.
type benchCommon struct {
	addr     string
	dial     bench.DialOptions
	users    []string
	password string
	seed     uint64
	json     string
	label    string
	maxSize  int
}

func readBenchCommon(cmd *cobra.Command) (benchCommon, error) {
	f := cmd.Flags()
	var c benchCommon
	c.addr, _ = f.GetString("addr")
	c.dial.TLS, _ = f.GetBool("tls")
	c.dial.InsecureSkipVerify, _ = f.GetBool("insecure-skip-verify")
	c.dial.Timeout, _ = f.GetDuration("timeout")
	n, _ := f.GetInt("users")
	pattern, _ := f.GetString("user-pattern")
	c.users = bench.UserNames(pattern, n)
	var err error
	if c.password, err = benchPassword(cmd); err != nil {
		return c, err
	}
	c.seed, _ = f.GetUint64("seed")
	c.json, _ = f.GetString("json")
	c.label, _ = f.GetString("label")
	c.maxSize, _ = f.GetInt("max-size")
	return c, nil
}

// benchPassword is the password of the bench users: from --password-file, or with
// --password - from a prompt on a terminal or standard input's first line (secret.go),
// else --password (default "demo", the demo account of `strata serve --demo`).
func benchPassword(cmd *cobra.Command) (string, error) {
	f := cmd.Flags()
	pw, _ := f.GetString("password")
	path, _ := f.GetString("password-file")
	switch {
	case path != "" && f.Changed("password"):
		return "", errors.New("give --password or --password-file, not both")
	case path == "" && pw != "-":
		return pw, nil
	}
	return passwordFromFileOrInput(cmd, path, "the password of the bench users")
}

// finish prints the report, writes its JSON, and fails when an operation failed.
func (c benchCommon) finish(cmd *cobra.Command, rep *bench.Report, runErr error) error {
	if rep != nil {
		rep.Label = c.label
		if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
			return err
		}
		if c.json != "" {
			if err := rep.WriteJSON(c.json); err != nil {
				return err
			}
		}
	}
	if runErr != nil {
		return runErr
	}
	if n := rep.Errors(); n > 0 {
		return fmt.Errorf("%d operations failed", n)
	}
	return nil
}

// interruptible cancels the command's context on SIGINT and SIGTERM.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

func runBenchMixed(cmd *cobra.Command, _ []string) error {
	c, err := readBenchCommon(cmd)
	if err != nil {
		return err
	}
	f := cmd.Flags()
	profileText, _ := f.GetString("profile")
	profile, err := bench.ParseProfile(profileText)
	if err != nil {
		return err
	}
	cfg := bench.Config{Addr: c.addr, Dial: c.dial, Users: c.users, Password: c.password, Profile: profile,
		Seed: c.seed, Corpus: bench.Corpus{Seed: c.seed, MaxSize: c.maxSize}, Progress: cmd.ErrOrStderr()}
	cfg.Clients, _ = f.GetInt("clients")
	cfg.Duration, _ = f.GetDuration("duration")
	if cfg.Duration <= 0 {
		cfg.Duration = defaultBenchDuration
	}
	cfg.Range, _ = f.GetInt("range")
	cfg.IdleHold, _ = f.GetDuration("idle-hold")
	cfg.Rate, _ = f.GetFloat64("rate")
	cfg.Arrivals, _ = f.GetString("arrivals")
	cfg.LoginFirst, _ = f.GetBool("login-first")
	cfg.ServerPID, _ = f.GetInt("server-pid")
	if path, _ := f.GetString("cpu-profile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	ctx, cancel := interruptible(cmd)
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	return c.finish(cmd, rep, err)
}

const defaultBenchDuration = 30 * time.Second

func newBenchCycleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cycle",
		Short: "A login per session: each client repeats connect, LOGIN, SELECT, FETCH, STORE, APPEND, EXPUNGE, LOGOUT",
		Long: `Each of --clients clients repeats one whole session on a new connection until --duration
has passed (a session under way then runs to its end):

  ` + bench.CycleSteps(bench.DefaultCycleRange) + `

that is connect and LOGIN, SELECT INBOX, FETCH (UID FLAGS ENVELOPE) of --range messages,
FETCH BODY.PEEK[] of one, STORE +/-FLAGS.SILENT on 1 to 5 with a FETCH FLAGS in the same
write, APPEND of one corpus message, UID STORE +FLAGS.SILENT (\Deleted) and UID EXPUNGE of
that message (the mailbox keeps its size), LOGOUT. Each command is one operation of the
report (the STORE's FETCH FLAGS read-back counts with it); sessions_per_sec counts the sessions completed without error. The INBOXes must be
populated first ('strata bench populate').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			cfg := bench.Config{Addr: c.addr, Dial: c.dial, Users: c.users, Password: c.password,
				Seed: c.seed, Corpus: bench.Corpus{Seed: c.seed, MaxSize: c.maxSize}, Progress: cmd.ErrOrStderr()}
			cfg.Clients, _ = f.GetInt("clients")
			cfg.Duration, _ = f.GetDuration("duration")
			if cfg.Duration <= 0 {
				cfg.Duration = defaultBenchDuration
			}
			cfg.Range, _ = f.GetInt("range")
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.RunCycle(ctx, cfg)
			return c.finish(cmd, rep, err)
		},
	}
	f := cmd.Flags()
	f.Int("clients", 50, "concurrent clients")
	f.Duration("duration", 0, "how long to start new sessions (default 30s)")
	f.Int("range", bench.DefaultCycleRange, "messages per FETCH of flags and envelopes")
	return cmd
}

func newBenchPopulateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "populate",
		Short: "Fill each user's INBOX with --messages corpus messages (pipelined LITERAL+ APPEND or MULTIAPPEND)",
		Long: `Appends --messages generated messages to the INBOX of each of --users users: plain text,
multipart/alternative, base64 attachments, threads, UTF-8 headers, sizes from 1 KiB to
--max-size. The same --seed gives the same mail on every server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			cfg := bench.PopulateConfig{Addr: c.addr, Dial: c.dial, Users: c.users, Password: c.password,
				Corpus: bench.Corpus{Seed: c.seed, MaxSize: c.maxSize}, Progress: cmd.ErrOrStderr()}
			cfg.Messages, _ = f.GetInt("messages")
			cfg.Conns, _ = f.GetInt("conns")
			cfg.Window, _ = f.GetInt("window")
			cfg.Batch, _ = f.GetInt("batch")
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.Populate(ctx, cfg)
			return c.finish(cmd, rep, err)
		},
	}
	cmd.Flags().Int("messages", 100, "messages per user")
	cmd.Flags().Int("conns", 8, "concurrent connections")
	cmd.Flags().Int("window", 32, "APPEND commands in flight per connection")
	cmd.Flags().Int("batch", 1, "messages per APPEND command (above 1: MULTIAPPEND, RFC 3502)")
	return cmd
}

func newBenchMaildirCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maildir DIR",
		Short: "Write the corpus 'populate' would append to a user's INBOX as a Maildir (for Dovecot and 'strata import maildir')",
		Long: `Writes --messages corpus messages, the same bytes and flags 'strata bench populate' appends
with the same --seed and --max-size to the INBOX of user --stream + 1, as Maildir files in
DIR/cur (LF line endings, flags in the names, the internal date in the modification time:
message i is received at 2023-11-14 22:13:20 UTC + i seconds). Dovecot serves DIR as a
user's Maildir and 'strata import maildir DIR' brings the same messages into Strata: a big
mailbox for both servers without a million APPENDs each. Files are not fsynced.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			cfg := bench.MaildirConfig{Dir: args[0], Corpus: bench.Corpus{Seed: c.seed, MaxSize: c.maxSize}, Progress: cmd.ErrOrStderr()}
			cfg.Messages, _ = f.GetInt("messages")
			cfg.First, _ = f.GetInt("first")
			cfg.Stream, _ = f.GetUint64("stream")
			cfg.Workers, _ = f.GetInt("workers")
			cfg.UID, _ = f.GetInt("uid")
			cfg.GID, _ = f.GetInt("gid")
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.WriteMaildir(ctx, cfg)
			if rep != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "maildir: %d messages, %d MiB, %.1f s, %.0f messages/s\n", rep.Messages, rep.Bytes>>20,
					rep.Elapsed.Seconds(), float64(rep.Messages)/rep.Elapsed.Seconds())
			}
			return err
		},
	}
	cmd.Flags().Int("messages", 100, "messages")
	cmd.Flags().Int("first", 0, "index of the first message: a Maildir written up to N grows on with --first N")
	cmd.Flags().Uint64("stream", 0, "corpus stream: the index of the user 'populate' would append them to (0: the first)")
	cmd.Flags().Int("workers", 4, "messages generated and written at once")
	cmd.Flags().Int("uid", -1, "owner of the files and directories (e.g. 65534, the Dovecot mail user of bench/dovecot.sh); -1: unchanged")
	cmd.Flags().Int("gid", -1, "group of the files and directories, with --uid")
	return cmd
}

func newBenchUsersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Create the bench users in Strata (admin gRPC) or write a Dovecot passwd-file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if path, _ := f.GetString("dovecot-passwd"); path != "" {
				uid, _ := f.GetInt("dovecot-uid")
				gid, _ := f.GetInt("dovecot-gid")
				homes, _ := f.GetString("dovecot-homes")
				return bench.WriteDovecotPasswd(path, c.users, c.password, uid, gid, homes)
			}
			// No admin deadline: creating many users hashes as many passwords.
			md, closeClient, err := adminClient(cmd.Context(), cmd)
			if err != nil {
				return err
			}
			defer closeClient()
			if err := bench.CreateUsers(cmd.Context(), md, c.users, c.password, c.dial.Timeout); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d users ready\n", len(c.users))
			return nil
		},
	}
	cmd.Flags().String("server", defaultAdminAddr, "admin gRPC address of a running Strata")
	cmd.Flags().String("etcd", "", "comma-separated etcd endpoints to find the metadata nodes of a cluster (instead of --server)")
	addClusterTLSFlags(cmd.Flags())
	cmd.Flags().String("dovecot-passwd", "", "write a Dovecot passwd-file here instead")
	cmd.Flags().Int("dovecot-uid", 65534, "system uid of the Dovecot mail users")
	cmd.Flags().Int("dovecot-gid", 65534, "system gid of the Dovecot mail users")
	cmd.Flags().String("dovecot-homes", "/tmp/dovecot-bench/home", "directory of the Dovecot users' homes")
	return cmd
}

func newBenchBigMailboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bigmailbox",
		Short: "SELECT cold and warm, FETCH 1:* (FLAGS), UID SEARCH by flag, header and BODY, UID FETCH of the last 50 ENVELOPEs, SORT and THREAD",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			repeat, _ := cmd.Flags().GetInt("repeat")
			list, _ := cmd.Flags().GetString("steps")
			steps, err := bench.ParseBigMailboxSteps(list)
			if err != nil {
				return err
			}
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.BigMailbox(ctx, bench.BigMailboxConfig{Addr: c.addr, Dial: c.dial, User: c.users[0],
				Password: c.password, Repeat: repeat, Steps: steps, Seed: c.seed})
			return c.finish(cmd, rep, err)
		},
	}
	cmd.Flags().Int("repeat", 3, "rounds of the command sequence")
	cmd.Flags().String("steps", "all", "comma-separated steps of a round ("+strings.Join(bench.BigMailboxSteps, ",")+"); select always runs")
	return cmd
}

func newBenchResyncCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resync",
		Short: "Reconnect after N flag changes: SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE ...), time and bytes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			changes, _ := cmd.Flags().GetInt("changes")
			rounds, _ := cmd.Flags().GetInt("rounds")
			full, _ := cmd.Flags().GetBool("full-resync")
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.Resync(ctx, bench.ResyncConfig{Addr: c.addr, Dial: c.dial, User: c.users[0],
				Password: c.password, Changes: changes, Rounds: rounds, FullResync: full, Seed: c.seed})
			return c.finish(cmd, rep, err)
		},
	}
	cmd.Flags().Int("changes", 10, "messages changed while the client is away, per round")
	cmd.Flags().Int("rounds", 5, "reconnects")
	cmd.Flags().Bool("full-resync", true, "also measure, once, FETCH 1:* (UID FLAGS), what a client without CONDSTORE does")
	return cmd
}

func newBenchIdleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "idle",
		Short: "Hold --connections sessions in IDLE and measure the server's memory per connection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			cfg := bench.IdleConfig{Addr: c.addr, Dial: c.dial, Users: c.users, Password: c.password, Progress: cmd.ErrOrStderr()}
			cfg.Connections, _ = f.GetInt("connections")
			cfg.Parallel, _ = f.GetInt("parallel")
			cfg.Hold, _ = f.GetDuration("hold")
			cfg.Settle, _ = f.GetDuration("settle")
			cfg.ServerPID, _ = f.GetInt("pid")
			sources, _ := f.GetStringSlice("source-ips")
			for _, s := range sources {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--source-ips: %q is not an IP address", s)
				}
				cfg.SourceIPs = append(cfg.SourceIPs, ip)
			}
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.Idle(ctx, cfg)
			return c.finish(cmd, rep, err)
		},
	}
	cmd.Flags().Int("connections", 1000, "connections to hold in IDLE")
	cmd.Flags().Int("parallel", 16, "connections set up at once")
	cmd.Flags().Duration("hold", 0, "how long to hold them after the measurement (default 10s)")
	cmd.Flags().Duration("settle", 0, "wait after the last connection entered IDLE before measuring (default 2s)")
	cmd.Flags().Int("pid", 0, "PID of the server (its process tree's RSS and PSS are measured)")
	cmd.Flags().StringSlice("source-ips", nil, "local addresses to connect from, in turn (e.g. 127.0.0.1,127.0.0.2: one has ~28,000 ephemeral ports)")
	return cmd
}

func newBenchLMTPCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lmtp",
		Short: "Deliver corpus messages over LMTP with --conns connections and --rcpts recipients each; msgs/s, p50/p99",
		Long: `Delivers generated messages over LMTP (RFC 2033) to the users of --users/--user-pattern,
--rcpts recipients per message (message i goes to users i*rcpts+1.. in turn), over --conns
connections, for --duration or until --count transactions were made (a failed one is
counted as an error, not retried). A message counts as
delivered only when every RCPT and every per-recipient reply after DATA was 250. The
same --seed gives the same messages on every server (Strata, Dovecot LMTP).

The users must exist: 'strata bench users' (Strata) or a Dovecot passwd-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := readBenchCommon(cmd)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			lmtpAddr, _ := f.GetString("lmtp-addr")
			cfg := bench.LMTPConfig{Addr: lmtpAddr, Recipients: c.users, Timeout: c.dial.Timeout,
				Corpus: bench.Corpus{Seed: c.seed, MaxSize: c.maxSize}, Progress: cmd.ErrOrStderr()}
			cfg.Conns, _ = f.GetInt("conns")
			cfg.PerMessage, _ = f.GetInt("rcpts")
			cfg.Count, _ = f.GetInt("count")
			cfg.Duration, _ = f.GetDuration("duration")
			cfg.From, _ = f.GetString("from")
			if cfg.Count == 0 && cfg.Duration <= 0 {
				cfg.Duration = defaultBenchDuration
			}
			ctx, cancel := interruptible(cmd)
			defer cancel()
			rep, err := bench.LMTP(ctx, cfg)
			return c.finish(cmd, rep, err)
		},
	}
	f := cmd.Flags()
	f.String("lmtp-addr", "127.0.0.1:2424", "LMTP server address")
	f.Int("conns", 1, "concurrent LMTP connections")
	f.Int("rcpts", 1, "recipients per message (at most --users)")
	f.Int("count", 0, "transactions to make in all (0: run for --duration)")
	f.Duration("duration", 0, "how long to run when --count is 0 (default 30s)")
	f.String("from", "bench@example.net", "envelope sender")
	return cmd
}

func newBenchCompareCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A.json B.json",
		Short: "Print per-command ratios of two reports of the same scenario",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := bench.ReadReport(args[0])
			if err != nil {
				return err
			}
			b, err := bench.ReadReport(args[1])
			if err != nil {
				return err
			}
			return writeComparison(cmd.OutOrStdout(), a, b)
		},
	}
}

func writeComparison(w io.Writer, a, b *bench.Report) error {
	if a.Scenario != b.Scenario {
		return fmt.Errorf("reports of different scenarios: %s and %s", a.Scenario, b.Scenario)
	}
	return bench.WriteComparison(w, a, b)
}
