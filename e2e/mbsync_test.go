package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestMbsync syncs a Maildir up to `strata serve` with mbsync (Debian package isync), pulls
// it into a second empty Maildir, propagates flag changes and deletions both ways, and checks
// after every step that the server, both Maildirs and mbsync's view agree, and that a sync
// with nothing to do sends no command that changes anything.
func TestMbsync(t *testing.T) {
	mbsync := requireTool(t, "mbsync", "isync")
	srv := startServe(t, t.TempDir())
	host, port, err := net.SplitHostPort(srv.imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	if err := os.MkdirAll(second, 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(config, []byte(mbsyncConfig(host, port, first, second, dir)), 0o600); err != nil {
		t.Fatal(err)
	}

	// The first Maildir: messages with every Maildir flag, one still in new/, a multipart
	// message with a larger attachment, and folders with hierarchy and a space.
	seed := []struct {
		folder, flags string
		inNew         bool
	}{
		{"INBOX", "", true}, {"INBOX", "S", false}, {"INBOX", "FS", false}, {"INBOX", "RS", false},
		{"INBOX", "D", false}, {"INBOX", "PS", false}, {"Archive", "S", false}, {"Archive", "", false},
		{"Work/Projects", "F", false}, {"Work/Projects", "S", false}, {"Old Stuff", "S", false},
	}
	for i, m := range seed {
		body := maildirTestMessage(i, i == 3)
		writeMaildirMessage(t, first, m.folder, fmt.Sprintf("%d.%d.e2e", 1700000000+i, i), m.flags, m.inNew, body)
	}

	runMbsync(t, mbsync, config, "first", "--push")
	checkMaildirFolders(t, srv, first, "after the push", true)
	runMbsync(t, mbsync, config, "second", "--pull")
	checkMaildirMatchesServer(t, srv, second, "after the pull into an empty Maildir")
	// A full sync of the first Maildir brings it the folders it did not have (the push
	// created Work on the server as the parent of Work/Projects, RFC 9051 6.3.4).
	runMbsync(t, mbsync, config, "first")
	checkMaildirMatchesServer(t, srv, first, "after a full sync of the first Maildir")
	compareMaildirs(t, first, second, "after the pull")

	// A full sync of both sides now has nothing to do.
	assertNoopSync(t, mbsync, config, "first", first)
	assertNoopSync(t, mbsync, config, "second", second)

	// Changes in the first Maildir: flag one message, unflag another, mark one seen, delete
	// one file and trash another (T is expunged because of Expunge Both).
	setMaildirFlags(t, first, "INBOX", 2, "S")    // drop \Flagged
	setMaildirFlags(t, first, "INBOX", 4, "DF")   // add \Flagged to the draft
	setMaildirFlags(t, first, "Archive", 7, "RS") // \Seen and \Answered
	removeMaildirMessage(t, first, "INBOX", 1)
	setMaildirFlags(t, first, "Work/Projects", 9, "ST")
	runMbsync(t, mbsync, config, "first")
	checkMaildirMatchesServer(t, srv, first, "after flag changes and deletions in the first Maildir")
	runMbsync(t, mbsync, config, "second")
	checkMaildirMatchesServer(t, srv, second, "after pulling the first Maildir's changes")
	compareMaildirs(t, first, second, "after the first Maildir's changes")

	// Changes in the second Maildir travel the other way.
	setMaildirFlags(t, second, "INBOX", 0, "S")
	removeMaildirMessage(t, second, "Old Stuff", 10)
	writeMaildirMessage(t, second, "Archive", "1800000000.1.e2e", "F", false, maildirTestMessage(11, false))
	runMbsync(t, mbsync, config, "second")
	checkMaildirMatchesServer(t, srv, second, "after changes in the second Maildir")
	runMbsync(t, mbsync, config, "first")
	checkMaildirMatchesServer(t, srv, first, "after pulling the second Maildir's changes")
	compareMaildirs(t, first, second, "after the second Maildir's changes")

	// Changes made on the server by another client reach both Maildirs.
	c := srv.login(t)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	uid := findUIDByMessageID(t, c, "<mbsync3@example.org>")
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatalf("STORE \\Deleted: %v", err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	uid = findUIDByMessageID(t, c, "<mbsync5@example.org>")
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatalf("STORE \\Flagged: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
	runMbsync(t, mbsync, config, "first")
	runMbsync(t, mbsync, config, "second")
	checkMaildirMatchesServer(t, srv, first, "after server-side changes (first)")
	checkMaildirMatchesServer(t, srv, second, "after server-side changes (second)")
	compareMaildirs(t, first, second, "after server-side changes")
	if msgs := readMaildir(t, first)["INBOX"]; msgs["<mbsync3@example.org>"] != nil || msgs["<mbsync5@example.org>"] == nil || msgs["<mbsync5@example.org>"].flags != "FPS" {
		t.Errorf("server-side expunge of mbsync3 and \\Flagged on mbsync5 did not arrive: %v", msgs)
	}
	assertNoopSync(t, mbsync, config, "first", first)
	assertNoopSync(t, mbsync, config, "second", second)
}

// requireTool returns the path of a Debian-packaged client or fails the test: the suite
// never skips a client silently.
func requireTool(t *testing.T, command, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err != nil {
		t.Fatalf("%s is required (Debian package %s; .ci/run installs it): %v", command, debianPackage, err)
	}
	return path
}

func mbsyncConfig(host, port, first, second, stateDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "IMAPAccount strata\nHost %s\nPort %s\nUser demo@example.com\nPass demo\nSSLType None\nAuthMechs LOGIN\n\n", host, port)
	b.WriteString("IMAPStore remote\nAccount strata\n\n")
	for _, side := range []struct{ name, path string }{{"first", first}, {"second", second}} {
		fmt.Fprintf(&b, "MaildirStore %s\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n", side.name, side.path, side.path)
		fmt.Fprintf(&b, "Channel %s\nFar :remote:\nNear :%s:\nPatterns *\nCreate Both\nExpunge Both\nSyncState %s/state-%s/\n\n",
			side.name, side.name, stateDir, side.name)
	}
	return b.String()
}

// runMbsync runs one channel with network debugging on and returns the IMAP commands mbsync
// sent.
func runMbsync(t *testing.T, mbsync, config, channel string, extra ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-Dn", "-c", config}, extra...)
	out, err := exec.CommandContext(ctx, mbsync, append(args, channel)...).CombinedOutput()
	if os.Getenv("STRATA_E2E_VERBOSE") != "" { // mbsync's IMAP traffic, for debugging
		t.Logf("mbsync %s:\n%s", channel, out)
	}
	if err != nil {
		t.Fatalf("mbsync %s %s: %v\n%s", strings.Join(extra, " "), channel, err, out)
	}
	var sent []string
	for _, line := range strings.Split(string(out), "\n") {
		if cmd, ok := strings.CutPrefix(line, ">>> "); ok {
			sent = append(sent, cmd)
		}
	}
	if len(sent) == 0 {
		t.Fatalf("mbsync %s sent no IMAP command (is -Dn output missing?):\n%s", channel, out)
	}
	return sent
}

// assertNoopSync runs a full sync that has nothing to do and fails if mbsync sends a command
// that would change the server or changes a file in the Maildir.
func assertNoopSync(t *testing.T, mbsync, config, channel, root string) {
	t.Helper()
	before := maildirFileNames(t, root)
	for _, cmd := range runMbsync(t, mbsync, config, channel) {
		fields := strings.Fields(cmd)
		if len(fields) < 2 {
			continue
		}
		verb := strings.ToUpper(fields[1])
		if verb == "UID" && len(fields) > 2 {
			verb += " " + strings.ToUpper(fields[2])
		}
		switch verb {
		case "APPEND", "STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "CREATE", "DELETE", "RENAME", "COPY", "UID COPY", "MOVE", "UID MOVE":
			t.Errorf("second mbsync of %s is not a no-op: it sent %q", channel, cmd)
		}
	}
	if after := maildirFileNames(t, root); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("second mbsync of %s changed the Maildir:\nbefore %v\nafter  %v", channel, before, after)
	}
}

func maildirTestMessage(i int, multipart bool) []byte {
	head := fmt.Sprintf("From: Sender %d <sender%d@example.org>\nTo: demo@example.com\nSubject: mbsync message %d\n"+
		"Message-ID: <mbsync%d@example.org>\nDate: Sun, 22 Nov 2026 10:%02d:00 +0000\nMIME-Version: 1.0\n", i, i, i, i, i)
	if !multipart {
		return []byte(head + "Content-Type: text/plain; charset=utf-8\n\nBody of message " + fmt.Sprint(i) + ".\nSecond line.\n")
	}
	attachment := bytes.Repeat([]byte("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n"), 3000)
	return []byte(head + "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nSee attached.\n" +
		"--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + string(attachment) + "--b1--\n")
}

// writeMaildirMessage stores body (LF line ends, as Maildir holds them) in folder.
func writeMaildirMessage(t *testing.T, root, folder, name, flags string, inNew bool, body []byte) {
	t.Helper()
	box := filepath.Join(root, filepath.FromSlash(folder))
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(box, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(box, "cur", name+":2,"+flags)
	if inNew {
		path = filepath.Join(box, "new", name)
	}
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
}

// maildirMessage is one message found in a Maildir.
type maildirMessage struct {
	path  string
	flags string // Maildir flag letters, sorted
	body  []byte // with CRLF line ends
}

// readMaildir returns folder -> Message-ID -> message for every folder under root.
func readMaildir(t *testing.T, root string) map[string]map[string]*maildirMessage {
	t.Helper()
	folders := map[string]map[string]*maildirMessage{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(path, "cur")); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		folder := filepath.ToSlash(rel)
		msgs := map[string]*maildirMessage{}
		folders[folder] = msgs
		for _, sub := range []string{"cur", "new"} {
			entries, err := os.ReadDir(filepath.Join(path, sub))
			if err != nil {
				return err
			}
			for _, e := range entries {
				file := filepath.Join(path, sub, e.Name())
				body, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				flags := ""
				if _, info, ok := strings.Cut(e.Name(), ":2,"); ok {
					flags = sortLetters(info)
				}
				id := messageIDOf(body)
				if id == "" {
					t.Fatalf("%s has no Message-ID", file)
				}
				if msgs[id] != nil {
					t.Errorf("%s holds %s twice: %s and %s", folder, id, msgs[id].path, file)
				}
				msgs[id] = &maildirMessage{path: file, flags: flags, body: withoutTUID(toCRLF(body))}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read Maildir %s: %v", root, err)
	}
	return folders
}

func maildirFileNames(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	for folder, msgs := range readMaildir(t, root) {
		for _, m := range msgs {
			names = append(names, folder+" "+filepath.Base(m.path))
		}
	}
	sort.Strings(names)
	return names
}

// findMaildirMessage returns the message with Message-ID <mbsync{i}@example.org> in folder.
func findMaildirMessage(t *testing.T, root, folder string, i int) *maildirMessage {
	t.Helper()
	m := readMaildir(t, root)[folder][fmt.Sprintf("<mbsync%d@example.org>", i)]
	if m == nil {
		t.Fatalf("message %d is not in %s of %s", i, folder, root)
	}
	return m
}

// setMaildirFlags renames message i into cur/ with the given flag letters, as a mail reader
// does.
func setMaildirFlags(t *testing.T, root, folder string, i int, flags string) {
	t.Helper()
	m := findMaildirMessage(t, root, folder, i)
	base, _, _ := strings.Cut(filepath.Base(m.path), ":2,")
	to := filepath.Join(filepath.Dir(filepath.Dir(m.path)), "cur", base+":2,"+flags)
	if err := os.Rename(m.path, to); err != nil {
		t.Fatal(err)
	}
}

func removeMaildirMessage(t *testing.T, root, folder string, i int) {
	t.Helper()
	if err := os.Remove(findMaildirMessage(t, root, folder, i).path); err != nil {
		t.Fatal(err)
	}
}

// maildirFlagToIMAP maps Maildir flag letters to IMAP flags as mbsync and offlineimap do.
var maildirFlagToIMAP = map[rune]imap.Flag{
	'D': imap.FlagDraft, 'F': imap.FlagFlagged, 'P': imap.FlagForwarded, 'R': imap.FlagAnswered, 'S': imap.FlagSeen, 'T': imap.FlagDeleted,
}

// checkMaildirMatchesServer checks that the server holds exactly the folders and messages of the
// Maildir at root, with the same flags and bytes.
func checkMaildirMatchesServer(t *testing.T, srv *serverProcess, root, when string) {
	t.Helper()
	checkMaildirFolders(t, srv, root, when, false)
}

// checkMaildirFolders is checkMaildirMatchesServer; with pushOnly the server may hold more folders
// than the Maildir (a push does not create Maildir folders for server folders).
func checkMaildirFolders(t *testing.T, srv *serverProcess, root, when string, pushOnly bool) {
	t.Helper()
	local := readMaildir(t, root)
	remote := serverMessages(t, srv)
	var localNames, remoteNames []string
	for f := range local {
		localNames = append(localNames, f)
	}
	for f := range remote {
		if _, ok := local[f]; ok || !pushOnly {
			remoteNames = append(remoteNames, f)
		}
	}
	sort.Strings(localNames)
	sort.Strings(remoteNames)
	if strings.Join(localNames, ",") != strings.Join(remoteNames, ",") {
		t.Errorf("%s: folders differ: Maildir %v, server %v", when, localNames, remoteNames)
	}
	for folder, msgs := range local {
		for id, m := range msgs {
			r := remote[folder][id]
			if r == nil {
				t.Errorf("%s: %s %s is in the Maildir but not on the server", when, folder, id)
				continue
			}
			var want []string
			for _, letter := range m.flags {
				if f, ok := maildirFlagToIMAP[letter]; ok {
					want = append(want, string(f))
				}
			}
			sort.Strings(want)
			if got := strings.Join(r.flags, " "); got != strings.Join(want, " ") {
				t.Errorf("%s: %s %s: Maildir flags %q, server flags %q", when, folder, id, m.flags, got)
			}
			if !bytes.Equal(r.body, m.body) {
				t.Errorf("%s: %s %s: bodies differ (server %d bytes, Maildir %d bytes)", when, folder, id, len(r.body), len(m.body))
			}
		}
		for id := range remote[folder] {
			if msgs[id] == nil {
				t.Errorf("%s: %s %s is on the server but not in the Maildir", when, folder, id)
			}
		}
	}
}

// compareMaildirs checks that two Maildirs hold the same messages with the same flags.
func compareMaildirs(t *testing.T, a, b, when string) {
	t.Helper()
	ma, mb := readMaildir(t, a), readMaildir(t, b)
	summary := func(m map[string]map[string]*maildirMessage) string {
		var rows []string
		for folder, msgs := range m {
			rows = append(rows, folder+"/")
			for id, msg := range msgs {
				rows = append(rows, folder+" "+id+" "+msg.flags+" "+fmt.Sprint(len(msg.body)))
			}
		}
		sort.Strings(rows)
		return strings.Join(rows, "\n")
	}
	if sa, sb := summary(ma), summary(mb); sa != sb {
		t.Errorf("%s: the two Maildirs differ:\n%s\n---\n%s", when, sa, sb)
	}
}

// serverMessage is one message as another IMAP client sees it.
type serverMessage struct {
	flags []string // sorted, without \Recent
	body  []byte
}

// serverMessages lists every mailbox with imapclient and fetches every message's flags and
// bytes.
func serverMessages(t *testing.T, srv *serverProcess) map[string]map[string]*serverMessage {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.imapAddr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Login("demo@example.com", "demo").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	result := map[string]map[string]*serverMessage{}
	for _, box := range boxes {
		if hasAttr(box.Attrs, imap.MailboxAttrNoSelect) || hasAttr(box.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		msgs := map[string]*serverMessage{}
		result[box.Mailbox] = msgs
		sel, err := c.Select(box.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("EXAMINE %q: %v", box.Mailbox, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, sel.NumMessages)
		fetched, err := c.Fetch(all, &imap.FetchOptions{
			UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %q: %v", box.Mailbox, err)
		}
		for _, m := range fetched {
			body := withoutTUID(m.FindBodySection(&imap.FetchItemBodySection{Peek: true}))
			id := messageIDOf(body)
			var flags []string
			for _, f := range m.Flags {
				if f != "\\Recent" {
					flags = append(flags, string(f))
				}
			}
			sort.Strings(flags)
			if msgs[id] != nil {
				t.Errorf("server mailbox %q holds %s twice", box.Mailbox, id)
			}
			msgs[id] = &serverMessage{flags: flags, body: body}
		}
	}
	return result
}

func findUIDByMessageID(t *testing.T, c *imapclient.Client, id string) imap.UID {
	t.Helper()
	data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: id}}}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH HEADER Message-ID %s: %v", id, err)
	}
	uids := data.AllUIDs()
	if len(uids) != 1 {
		t.Fatalf("UID SEARCH HEADER Message-ID %s found %v, want one UID", id, uids)
	}
	return uids[0]
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, b := range attrs {
		if strings.EqualFold(string(b), string(a)) {
			return true
		}
	}
	return false
}

// messageIDOf returns the Message-ID header value of a message.
func messageIDOf(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Message-ID") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// withoutTUID removes the X-TUID header field mbsync adds to every message it uploads (it
// finds the message again by it when the server does not return APPENDUID; mbsync 1.4 adds it
// regardless) and strips again when it downloads.
func withoutTUID(body []byte) []byte {
	head, rest, ok := bytes.Cut(body, []byte("\r\n\r\n"))
	if !ok {
		return body
	}
	var kept [][]byte
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if !bytes.HasPrefix(line, []byte("X-TUID: ")) {
			kept = append(kept, line)
		}
	}
	return append(append(bytes.Join(kept, []byte("\r\n")), "\r\n\r\n"...), rest...)
}

func toCRLF(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func sortLetters(s string) string {
	r := []rune(s)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	return string(r)
}
