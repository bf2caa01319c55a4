package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/strata-mail/strata/bench"
	"github.com/strata-mail/strata/frontend/importer"
	"github.com/strata-mail/strata/frontend/importer/importertest"
	"github.com/strata-mail/strata/frontend/migrate"
	"github.com/strata-mail/strata/internal/dovecottest"
)

var source *dovecottest.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-migrate-dovecot-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	source, err = startDovecot(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	source.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sourceClient logs in to the test Dovecot as user, over STARTTLS.
func sourceClient(t *testing.T, user string) *imapclient.Client {
	t.Helper()
	tlsConfig, err := source.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialStartTLS(source.IMAPAddr, &imapclient.Options{TLSConfig: tlsConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, dovecotPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

var corpus = bench.Corpus{Seed: 16, MaxSize: 96 << 10}

// fill gives user's source account folders (with the special-use ones and a hierarchy),
// subscriptions (one to a name that is no folder), and in each folder count corpus messages
// with flags, keywords and internal dates; it returns the folders by source name.
func fill(t *testing.T, c *imapclient.Client, user string, count int) []string {
	t.Helper()
	folders := []string{"INBOX", "Sent", "Drafts", "Trash", "Archive", "Archive.2024", "Work", "Work.Projects"}
	for _, f := range folders[1:] {
		if err := c.Create(f, nil).Wait(); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatalf("create %s: %v", f, err)
		}
	}
	// A subscription to a name that is no folder: Dovecot subscribes only folders.
	if err := c.Create("Old.Gone", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"INBOX", "Sent", "Work.Projects", "Old.Gone"} {
		if err := c.Subscribe(f).Wait(); err != nil {
			t.Fatalf("subscribe %s: %v", f, err)
		}
	}
	if err := c.Delete("Old.Gone").Wait(); err != nil {
		t.Fatal(err)
	}
	for i, f := range folders {
		appendMessages(t, c, f, uint64(i), 0, count)
	}
	return folders
}

// appendMessages appends corpus messages [from, to) of stream to folder.
func appendMessages(t *testing.T, c *imapclient.Client, folder string, stream uint64, from, to int) {
	t.Helper()
	base := time.Date(2024, 3, 1, 9, 30, 0, 0, time.FixedZone("", 3600))
	for i := from; i < to; i++ {
		msg := corpus.Message(stream, i)
		var flags []imap.Flag
		for _, fl := range corpus.Flags(stream, i) {
			flags = append(flags, imap.Flag(fl))
		}
		switch i % 5 {
		case 1:
			flags = append(flags, "$Label1")
		case 2:
			flags = append(flags, "Project-X", imap.FlagFlagged)
		}
		appendOne(t, c, folder, msg, &imap.AppendOptions{Flags: flags, Time: base.Add(time.Duration(i) * 97 * time.Minute)})
	}
}

// appendOne appends msg to folder (RFC 9051 6.3.12).
func appendOne(t *testing.T, c *imapclient.Client, folder string, msg []byte, opts *imap.AppendOptions) {
	t.Helper()
	cmd := c.Append(folder, int64(len(msg)), opts)
	if _, err := cmd.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %s: %v", folder, err)
	}
}

func migrateConfig(t *testing.T, user string, s *importertest.Strata) migrate.Config {
	t.Helper()
	src, err := migrate.ParseSource("imaps://"+user+"@"+source.IMAPSAddr, false)
	if err != nil {
		t.Fatal(err)
	}
	src.Password = dovecotPassword
	if src.TLSConfig, err = source.TLSConfig(); err != nil {
		t.Fatal(err)
	}
	return migrate.Config{Source: src, Target: s.Target, Expunge: true, BatchMessages: 7, SpoolDir: t.TempDir()}
}

// specialUses are the attributes of RFC 6154 2.
var specialUses = []imap.MailboxAttr{imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts,
	imap.MailboxAttrFlagged, imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash}

// message is what a client sees of a message.
type message struct {
	flags []string
	date  time.Time
	body  []byte
}

// mailboxView is what a client sees of a mailbox: UIDVALIDITY and messages by UID.
type mailboxView struct {
	uidValidity uint32
	messages    map[uint32]message
}

// account is what a client sees of an account, by Strata folder name: mailboxes, the
// special use of each, the subscriptions.
type account struct {
	boxes      map[string]mailboxView
	specialUse map[string]string
	subscribed []string
}

func view(t *testing.T, c *imapclient.Client, delim string) account {
	t.Helper()
	name := func(n string) string { return strings.ReplaceAll(n, delim, "/") }
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	acct := account{boxes: map[string]mailboxView{}, specialUse: map[string]string{}}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		for _, a := range l.Attrs {
			if slices.Contains(specialUses, a) {
				acct.specialUse[name(l.Mailbox)] = string(a)
			}
		}
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", l.Mailbox, err)
		}
		mv := mailboxView{uidValidity: sel.UIDValidity, messages: map[uint32]message{}}
		if sel.NumMessages > 0 {
			var all imap.UIDSet
			all.AddRange(1, 0)
			got, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
			if err != nil {
				t.Fatalf("fetch %s: %v", l.Mailbox, err)
			}
			for _, m := range got {
				var flags []string
				for _, f := range m.Flags {
					if f != `\Recent` {
						flags = append(flags, strings.ToLower(string(f)))
					}
				}
				sort.Strings(flags)
				var body []byte
				for _, b := range m.BodySection {
					body = b.Bytes
				}
				mv.messages[uint32(m.UID)] = message{flags: flags, date: m.InternalDate.UTC(), body: body}
			}
		}
		acct.boxes[name(l.Mailbox)] = mv
	}
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range subs {
		acct.subscribed = append(acct.subscribed, name(l.Mailbox))
	}
	sort.Strings(acct.subscribed)
	return acct
}

// sameAccount fails the test unless the target shows what the source shows: the same
// folders with the same special use, UIDVALIDITY, UIDs, flags, keywords, internal dates and
// bodies, and the same subscriptions.
func sameAccount(t *testing.T, src, dst account) {
	t.Helper()
	for name, sb := range src.boxes {
		db, ok := dst.boxes[name]
		if !ok {
			t.Errorf("folder %s missing in Strata", name)
			continue
		}
		if sb.uidValidity != db.uidValidity {
			t.Errorf("%s: UIDVALIDITY %d in Strata, %d at the source", name, db.uidValidity, sb.uidValidity)
		}
		if len(sb.messages) != len(db.messages) {
			t.Errorf("%s: %d messages in Strata, %d at the source", name, len(db.messages), len(sb.messages))
		}
		for uid, sm := range sb.messages {
			dm, ok := db.messages[uid]
			switch {
			case !ok:
				t.Errorf("%s: UID %d missing in Strata", name, uid)
			case !slices.Equal(sm.flags, dm.flags):
				t.Errorf("%s UID %d: flags %v in Strata, %v at the source", name, uid, dm.flags, sm.flags)
			case !sm.date.Equal(dm.date):
				t.Errorf("%s UID %d: internal date %v in Strata, %v at the source", name, uid, dm.date, sm.date)
			case !bytes.Equal(sm.body, dm.body):
				t.Errorf("%s UID %d: body differs (%d bytes in Strata, %d at the source)", name, uid, len(dm.body), len(sm.body))
			}
		}
	}
	for name, db := range dst.boxes {
		if _, ok := src.boxes[name]; !ok && len(db.messages) > 0 {
			// A new Strata account has its own empty special-use folders.
			t.Errorf("folder %s in Strata is not at the source", name)
		}
	}
	for name, use := range src.specialUse {
		if dst.specialUse[name] != use {
			t.Errorf("%s: special use %q in Strata, %q at the source", name, dst.specialUse[name], use)
		}
	}
	if !slices.Equal(src.subscribed, dst.subscribed) {
		t.Errorf("subscriptions %v in Strata, %v at the source", dst.subscribed, src.subscribed)
	}
}

func checkReport(t *testing.T, rep *migrate.Report) {
	t.Helper()
	if len(rep.Failures) > 0 {
		t.Errorf("failures: %v", rep.Failures)
	}
	for _, f := range rep.Folders {
		if f.SourceCount != f.TargetCount || !f.UIDsKept {
			t.Errorf("folder report %+v", f)
		}
	}
}

// TestMigrateFullThenIncremental copies a Dovecot account whole, then, after new messages,
// flag changes and an expunge at the source, runs again: the second run copies only the
// new messages and applies the changes, and each time Strata shows what Dovecot shows.
func TestMigrateFullThenIncremental(t *testing.T) {
	const user = "test1"
	src := sourceClient(t, user)
	fill(t, src, user, 12)
	s := importertest.Start(t, "test1@example.com")
	ctx := context.Background()

	rep, err := migrate.Run(ctx, migrateConfig(t, user, s))
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	copied := 0
	for _, f := range rep.Folders {
		copied += f.Copied
	}
	if copied != 8*12 {
		t.Fatalf("first run copied %d messages, want %d", copied, 8*12)
	}
	dst := s.Client(t)
	sameAccount(t, view(t, src, "."), view(t, dst, "/"))

	// At the source: new messages, flag changes (a flag, a keyword), an expunge.
	appendMessages(t, src, "INBOX", 0, 12, 15)
	appendMessages(t, src, "Work.Projects", 7, 12, 13)
	if _, err := src.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := src.Store(imap.UIDSetNum(2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "Urgent"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Store(imap.UIDSetNum(4), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: nil, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Store(imap.UIDSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.UIDExpunge(imap.UIDSetNum(5)).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}

	rep, err = migrate.Run(ctx, migrateConfig(t, user, s))
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	var again, updated, expunged int
	for _, f := range rep.Folders {
		again += f.Copied
		updated += f.FlagsUpdated
		expunged += f.Expunged
	}
	if again != 4 || updated != 3 || expunged != 1 {
		t.Fatalf("second run copied %d, updated the flags of %d, expunged %d; want 4, 3, 1", again, updated, expunged)
	}
	sameAccount(t, view(t, src, "."), view(t, dst, "/"))

	// A third run finds nothing to do.
	rep, err = migrate.Run(ctx, migrateConfig(t, user, s))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Folders {
		if f.Copied+f.FlagsUpdated+f.Expunged != 0 {
			t.Fatalf("third run did something: %+v", f)
		}
	}
}

// TestMigrateResumes interrupts a copy (its context ends after a few batches), and, to
// stand for a crash between a committed batch and the record of it, winds the record back;
// the next run completes the copy with every message once.
func TestMigrateResumes(t *testing.T) {
	const user = "test2"
	src := sourceClient(t, user)
	if err := src.Create("Big", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMessages(t, src, "Big", 42, 0, 60)
	s := importertest.Start(t, "test2@example.com")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := migrateConfig(t, user, s)
	cfg.Progress = func(p migrate.Progress) {
		if p.Folder == "Big" && p.Done >= 21 {
			cancel()
		}
	}
	if _, err := migrate.Run(ctx, cfg); err == nil {
		t.Fatal("an interrupted run reported success")
	}
	box, err := s.Target.Mailbox(context.Background(), "Big")
	if err != nil || box == nil {
		t.Fatalf("Big after the interrupted run: %v, %v", box, err)
	}
	if box.GetMessages() == 0 || box.GetMessages() >= 60 {
		t.Fatalf("the interrupted run left %d messages", box.GetMessages())
	}
	st, err := s.Target.State(context.Background(), box.GetId())
	if err != nil || st == nil {
		t.Fatalf("state: %v, %v", st, err)
	}
	// The last batch committed, but its record lost.
	st.LastUID -= 7
	st.TargetUIDNext -= 7
	if err := s.Target.SetState(context.Background(), box.GetId(), st); err != nil {
		t.Fatal(err)
	}

	cfg.Progress = nil
	rep, err := migrate.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	sameAccount(t, view(t, src, "."), view(t, s.Client(t), "/"))
}

// TestMigrateRetriesUnreadableMessages: messages the source cannot read (their files made
// unreadable: Dovecot answers their FETCH with BYE) are reported and listed in the
// record, the rest is copied; the next run tries them again and reports them as failing
// before too. Then UID 4 is readable again and UID 7 expunged at the source: the third
// run copies UID 4 (under a new UID, the ones above were copied) and drops UID 7, leaving
// the record with no failure. Flag changes and the expunge at the source then reach the
// retried message through its source UID. (A message whose file is deleted is no test of
// a retry: Dovecot drops it from its index after failing it once.)
func TestMigrateRetriesUnreadableMessages(t *testing.T) {
	const user = "test3"
	src := sourceClient(t, user)
	appendMessages(t, src, "INBOX", 3, 0, 10)
	// sdbox keeps a message per file, u.UID.
	mails := filepath.Join(source.Dir, "home", user, "sdbox", "mailboxes", "INBOX", "dbox-Mails")
	unreadable := filepath.Join(mails, "u.4")
	info, err := os.Stat(unreadable)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{unreadable, filepath.Join(mails, "u.7")} {
		if err := os.Chmod(file, 0); err != nil {
			t.Fatal(err)
		}
	}
	s := importertest.Start(t, "test3@example.com")
	ctx := context.Background()
	failed := func(rep *migrate.Report, retried bool, want ...uint32) {
		t.Helper()
		var uids []uint32
		for _, f := range rep.Failures {
			if f.Folder != "INBOX" || f.Retried != retried || f.Err == "" {
				t.Errorf("failure %+v, want retried %v", f, retried)
			}
			uids = append(uids, f.UID)
		}
		if !slices.Equal(uids, want) {
			t.Fatalf("failures %v, want UIDs %v of INBOX", rep.Failures, want)
		}
	}
	record := func() *importer.State {
		t.Helper()
		box, err := s.Target.Mailbox(ctx, "INBOX")
		if err != nil || box == nil {
			t.Fatalf("INBOX: %v, %v", box, err)
		}
		st, err := s.Target.State(ctx, box.GetId())
		if err != nil || st == nil {
			t.Fatalf("record: %v, %v", st, err)
		}
		return st
	}

	rep := migrateOK(t, migrateConfig(t, user, s))
	failed(rep, false, 4, 7)
	if f := rep.Folders[0]; f.Copied != 8 || f.TargetCount != 8 {
		t.Fatalf("INBOX report %+v", f)
	}
	if st := record(); len(st.Failed) != 2 || st.Failed[0].UID != 4 || st.Failed[1].UID != 7 || st.Failed[0].Reason == "" || st.LastUID != 10 {
		t.Fatalf("record after the first run: %+v", st)
	}

	// Still unreadable: tried again, reported again.
	rep = migrateOK(t, migrateConfig(t, user, s))
	failed(rep, true, 4, 7)
	if f := rep.Folders[0]; f.Copied != 0 || f.Retried != 0 {
		t.Fatalf("INBOX report of the second run %+v", f)
	}
	if st := record(); len(st.Failed) != 2 {
		t.Fatalf("record after the second run: %+v", st)
	}

	// UID 4 readable again, UID 7 expunged at the source.
	if err := os.Chmod(unreadable, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	sourceExpunge(t, src, "INBOX", 7)
	rep = migrateOK(t, migrateConfig(t, user, s))
	checkReport(t, rep)
	if f := rep.Folders[0]; f.Copied != 1 || f.Retried != 1 || f.TargetCount != 9 || f.SourceCount != 9 {
		t.Fatalf("INBOX report of the third run %+v", f)
	}
	if st := record(); len(st.Failed) != 0 {
		t.Fatalf("failed messages left in the record: %+v", st.Failed)
	}
	dst := s.Client(t)
	inbox := view(t, dst, "/").boxes["INBOX"]
	if _, kept := inbox.messages[4]; kept {
		t.Fatal("the retried message has UID 4 in Strata, below messages copied before it")
	}
	sameMessages(t, "INBOX", view(t, src, ".").boxes["INBOX"], inbox, nil)

	// The retried message has a new UID here; the source's changes reach it all the same.
	sourceStore(t, src, "INBOX", 4, imap.StoreFlagsSet, imap.FlagFlagged, "Retried")
	rep = migrateOK(t, migrateConfig(t, user, s))
	checkReport(t, rep)
	if f := rep.Folders[0]; f.FlagsUpdated != 1 || f.Copied != 0 {
		t.Fatalf("INBOX report after a flag change %+v", f)
	}
	sameMessages(t, "INBOX", view(t, src, ".").boxes["INBOX"], view(t, dst, "/").boxes["INBOX"], nil)
	sourceExpunge(t, src, "INBOX", 4)
	rep = migrateOK(t, migrateConfig(t, user, s))
	checkReport(t, rep)
	if f := rep.Folders[0]; f.Expunged != 1 || f.TargetCount != 8 {
		t.Fatalf("INBOX report after an expunge %+v", f)
	}
	sameMessages(t, "INBOX", view(t, src, ".").boxes["INBOX"], view(t, dst, "/").boxes["INBOX"], nil)
}

// sourceStore changes the flags of message uid of folder at the source.
func sourceStore(t *testing.T, c *imapclient.Client, folder string, uid imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Flags: flags, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
}

// sourceExpunge expunges message uid of folder at the source (RFC 9051 6.4.9).
func sourceExpunge(t *testing.T, c *imapclient.Client, folder string, uid imap.UID) {
	t.Helper()
	sourceStore(t, c, folder, uid, imap.StoreFlagsAdd, imap.FlagDeleted)
	if err := c.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
}

// migrateOK runs a copy and fails the test if it fails as a whole.
func migrateOK(t *testing.T, cfg migrate.Config) *migrate.Report {
	t.Helper()
	rep, err := migrate.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// deliver appends a message to folder of Strata directly, as mail that arrives there
// during the migration, and returns its body.
func deliver(t *testing.T, c *imapclient.Client, folder, subject string) []byte {
	t.Helper()
	msg := []byte("From: someone@example.net\r\nTo: test@example.com\r\nSubject: " + subject + "\r\n\r\nDelivered to Strata.\r\n")
	appendOne(t, c, folder, msg, &imap.AppendOptions{Flags: []imap.Flag{"$Direct"}})
	return msg
}

// sameMessages fails the test unless the Strata mailbox dst holds the source mailbox
// src's messages (the same bodies, flags and internal dates, whatever their UIDs) and the
// messages delivered to it directly, with the flag they were delivered with.
func sameMessages(t *testing.T, name string, src, dst mailboxView, delivered [][]byte) {
	t.Helper()
	byBody := func(mv mailboxView) map[string]message {
		out := map[string]message{}
		for _, m := range mv.messages {
			out[string(m.body)] = m
		}
		return out
	}
	want, got := byBody(src), byBody(dst)
	for _, d := range delivered {
		want[string(d)] = message{flags: []string{"$direct"}, body: d}
	}
	if len(got) != len(want) || len(dst.messages) != len(got) {
		t.Errorf("%s: %d messages in Strata (%d distinct), want %d", name, len(dst.messages), len(got), len(want))
	}
	for body, w := range want {
		g, ok := got[body]
		switch {
		case !ok:
			t.Errorf("%s: a message (%d bytes) missing in Strata", name, len(body))
		case !slices.Equal(w.flags, g.flags):
			t.Errorf("%s: flags %v in Strata, want %v", name, g.flags, w.flags)
		case !w.date.IsZero() && !w.date.Equal(g.date):
			t.Errorf("%s: internal date %v in Strata, %v at the source", name, g.date, w.date)
		}
	}
}

// TestMigrateSyncsMessagesCopiedUnderNewUIDs: a Strata mailbox that already held mail
// (Lists) takes the source's messages under new UIDs; later runs apply the source's flag
// changes and expunges to them, found by their source UIDs, and never touch the mail
// delivered to Strata directly. Work is copied with its UIDs; mail delivered to it
// between two runs takes the next UID, and the source's next messages (above it, the
// source having expunged one meanwhile) keep theirs: an expunge at the source still
// leaves the delivered message alone.
func TestMigrateSyncsMessagesCopiedUnderNewUIDs(t *testing.T) {
	const user = "test5"
	src := sourceClient(t, user)
	for _, folder := range []string{"Lists", "Work"} {
		if err := src.Create(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	appendMessages(t, src, "Lists", 5, 0, 8)
	appendMessages(t, src, "Work", 6, 0, 4)
	s := importertest.Start(t, "test5@example.com")
	dst := s.Client(t)
	// Strata's Lists, with a UIDVALIDITY of its own: both servers take the time of day, so
	// the two may meet; a mailbox created again takes a greater one.
	sourceStatus, err := src.Status("Lists", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := dst.Create("Lists", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		st, err := dst.Status("Lists", &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if st.UIDValidity != sourceStatus.UIDValidity {
			break
		}
		if err := dst.Delete("Lists").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	listsDelivered := [][]byte{deliver(t, dst, "Lists", "before the migration")}

	rep := migrateOK(t, migrateConfig(t, user, s))
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	folders := map[string]migrate.FolderReport{}
	for _, f := range rep.Folders {
		folders[f.Target] = f
	}
	if f := folders["Lists"]; f.UIDsKept || f.Copied != 8 || f.TargetCount != 9 {
		t.Fatalf("INBOX after the first run: %+v", f)
	}
	if f := folders["Work"]; !f.UIDsKept || f.Copied != 4 {
		t.Fatalf("Work after the first run: %+v", f)
	}
	workDelivered := [][]byte{deliver(t, dst, "Work", "between two runs")} // Work UID 5 in Strata
	listsDelivered = append(listsDelivered, deliver(t, dst, "Lists", "between two runs"))
	// The source's Work: UID 5 comes and goes, 6 and 7 are new, above Strata's UIDNEXT.
	appendMessages(t, src, "Work", 6, 4, 7)
	sourceExpunge(t, src, "Work", 5)
	rep = migrateOK(t, migrateConfig(t, user, s))
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	srcView, dstView := view(t, src, "."), view(t, dst, "/")
	sameMessages(t, "Lists", srcView.boxes["Lists"], dstView.boxes["Lists"], listsDelivered)
	sameMessages(t, "Work", srcView.boxes["Work"], dstView.boxes["Work"], workDelivered)
	if _, kept := dstView.boxes["Work"].messages[6]; !kept {
		t.Fatalf("Work: source UID 6 did not keep its UID: %v", dstView.boxes["Work"].messages)
	}

	// At the source: flag changes and expunges in both folders.
	sourceStore(t, src, "Lists", 2, imap.StoreFlagsAdd, imap.FlagFlagged, "Urgent")
	sourceStore(t, src, "Lists", 3, imap.StoreFlagsSet)
	sourceExpunge(t, src, "Lists", 5)
	sourceStore(t, src, "Work", 6, imap.StoreFlagsAdd, imap.FlagAnswered)
	sourceExpunge(t, src, "Work", 1)
	if err := src.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	rep = migrateOK(t, migrateConfig(t, user, s))
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	for _, f := range rep.Folders {
		folders[f.Target] = f
	}
	if f := folders["Lists"]; f.Copied != 0 || f.FlagsUpdated != 2 || f.Expunged != 1 || f.TargetCount != f.SourceCount+2 {
		t.Fatalf("INBOX after the changes: %+v", f)
	}
	if f := folders["Work"]; f.Copied != 0 || f.FlagsUpdated != 1 || f.Expunged != 1 || f.TargetCount != f.SourceCount+1 {
		t.Fatalf("Work after the changes: %+v", f)
	}
	srcView, dstView = view(t, src, "."), view(t, dst, "/")
	sameMessages(t, "Lists", srcView.boxes["Lists"], dstView.boxes["Lists"], listsDelivered)
	sameMessages(t, "Work", srcView.boxes["Work"], dstView.boxes["Work"], workDelivered)

	// A run finds nothing to do.
	rep = migrateOK(t, migrateConfig(t, user, s))
	for _, f := range rep.Folders {
		if f.Copied+f.FlagsUpdated+f.Expunged != 0 {
			t.Fatalf("run without changes did something: %+v", f)
		}
	}

	// Work emptied at the source: what was copied goes, the delivered message stays.
	if _, err := src.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	if err := src.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	rep = migrateOK(t, migrateConfig(t, user, s))
	for _, f := range rep.Folders {
		if f.Target == "Work" && (f.Expunged != 5 || f.SourceCount != 0 || f.TargetCount != 1) {
			t.Fatalf("Work emptied at the source: %+v", f)
		}
	}
	srcView, dstView = view(t, src, "."), view(t, dst, "/")
	sameMessages(t, "Work", srcView.boxes["Work"], dstView.boxes["Work"], workDelivered)
}

// TestParseSource: the URL forms and what is refused.
func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		plaintext bool
		want      string
		security  migrate.Security
	}{
		{"imaps://bob@mail.example.com", false, "mail.example.com:993", migrate.TLS},
		{"imap://bob@mail.example.com", false, "mail.example.com:143", migrate.StartTLS},
		{"imap://bob@mail.example.com:1143", true, "mail.example.com:1143", migrate.Plaintext},
		{"imaps://bob@example.com@[::1]:9993", false, "[::1]:9993", migrate.TLS},
	} {
		src, err := migrate.ParseSource(tc.raw, tc.plaintext)
		if err != nil || src.Addr != tc.want || src.Security != tc.security {
			t.Errorf("ParseSource(%q) = %+v, %v", tc.raw, src, err)
		}
	}
	for _, raw := range []string{"imaps://host", "pop3://bob@host", "imaps://bob:pw@host", "imaps://bob@host/INBOX", "imaps://bob@"} {
		if _, err := migrate.ParseSource(raw, false); err == nil {
			t.Errorf("ParseSource(%q) accepted", raw)
		}
	}
	if _, err := migrate.ParseSource("imaps://bob@host", true); err == nil {
		t.Error("plaintext with imaps:// accepted")
	}
}

// TestMigrateOverStartTLSAndPlaintext: imap:// upgrades with STARTTLS (RFC 9051 6.2.1) and
// checks the certificate; plaintext only when asked for.
func TestMigrateOverStartTLSAndPlaintext(t *testing.T) {
	const user = "test4"
	src := sourceClient(t, user)
	appendMessages(t, src, "INBOX", 9, 0, 3)
	s := importertest.Start(t, "test4@example.com")
	tlsConfig, err := source.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	startTLS, err := migrate.ParseSource("imap://"+user+"@"+source.IMAPAddr, false)
	if err != nil {
		t.Fatal(err)
	}
	startTLS.Password = dovecotPassword
	// Without the test CA the certificate is refused.
	if _, err := migrate.Run(context.Background(), migrate.Config{Source: startTLS, Target: s.Target}); err == nil {
		t.Fatal("a certificate from an unknown CA was accepted")
	}
	startTLS.TLSConfig = tlsConfig
	rep, err := migrate.Run(context.Background(), migrate.Config{Source: startTLS, Target: s.Target})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	appendMessages(t, src, "INBOX", 9, 3, 4)
	plain, err := migrate.ParseSource("imap://"+user+"@"+source.IMAPAddr, true)
	if err != nil {
		t.Fatal(err)
	}
	plain.Password = dovecotPassword
	rep, err = migrate.Run(context.Background(), migrate.Config{Source: plain, Target: s.Target})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep)
	if rep.Folders[0].Copied != 1 || rep.Folders[0].TargetCount != 4 {
		t.Fatalf("plaintext run: %+v", rep.Folders[0])
	}
	sameAccount(t, view(t, src, "."), view(t, s.Client(t), "/"))
}
