package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The adversarial isolation suite of issue 7: a user of one tenant drives every
// mailbox command with another tenant's account and mailbox names, LIST patterns
// that try to escape, hostile bytes in names and out-of-range message sets, and a
// user of the same tenant probes mailboxes not shared with it. Expected: NO or BAD
// with a response code, not one byte of another tenant's data, names or existence,
// and the same answer for "exists but forbidden" as for "does not exist" (RFC 4314 6).

// rawIMAP is a line-level IMAP client that keeps everything the server sent, so
// that a test can search the whole transcript for leaked bytes.
type rawIMAP struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	tag  int
	seen bytes.Buffer
}

// imapReply is the answer to one command: its untagged lines (literals inlined) and
// its tagged status line without the tag.
type imapReply struct {
	untagged []string
	status   string
}

func (r imapReply) ok() bool { return strings.HasPrefix(r.status, "OK") }

func (r imapReply) String() string {
	return strings.Join(append(append([]string(nil), r.untagged...), r.status), "\n")
}

func dialRaw(t *testing.T, addr, user, pass string) *rawIMAP {
	t.Helper()
	c := dialGreeted(t, addr)
	if rep := c.cmd("LOGIN " + quote(user) + " " + quote(pass)); !rep.ok() {
		t.Fatalf("LOGIN %s: %s", user, rep)
	}
	return c
}

// dialGreeted opens a raw session to addr and reads the server's OK greeting.
func dialGreeted(t *testing.T, addr string) *rawIMAP {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawIMAP{t: t, conn: conn, r: bufio.NewReader(conn)}
	if greeting := c.readLine(); !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting: %q", greeting)
	}
	return c
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var literalSuffix = regexp.MustCompile(`\{(\d+)\}$`)

// readLine reads one response line, with the literals it announces inlined.
func (c *rawIMAP) readLine() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var line strings.Builder
	for {
		s, err := c.r.ReadString('\n')
		c.seen.WriteString(s)
		if err != nil {
			c.t.Fatalf("read: %v (after %q)", err, line.String()+s)
		}
		s = strings.TrimRight(s, "\r\n")
		line.WriteString(s)
		m := literalSuffix.FindStringSubmatch(s)
		if m == nil {
			return line.String()
		}
		n, _ := strconv.Atoi(m[1])
		if n > 1<<20 {
			c.t.Fatalf("literal of %d octets", n)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		c.seen.Write(buf)
		line.Write(buf)
	}
}

// send writes raw command bytes after a fresh tag and returns the reply.
func (c *rawIMAP) send(rest []byte) imapReply {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("x%d", c.tag)
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(append(append([]byte(tag+" "), rest...), "\r\n"...)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	var rep imapReply
	for {
		line := c.readLine()
		switch {
		case strings.HasPrefix(line, tag+" "):
			rep.status = strings.TrimPrefix(line, tag+" ")
			return rep
		case strings.HasPrefix(line, "+"):
			c.t.Fatalf("unexpected continuation %q for %q", line, rest)
		default:
			rep.untagged = append(rep.untagged, line)
		}
	}
}

func (c *rawIMAP) cmd(line string) imapReply { return c.send([]byte(line)) }

// lit is a LITERAL+ (RFC 7888) argument holding arbitrary bytes.
func lit(b string) string { return fmt.Sprintf("{%d+}\r\n%s", len(b), b) }

const secretToken = "ACME-SECRET-TOKEN-7f3a"

func isolationMessage(subject string) string {
	return "From: Alice <alice@acme.test>\r\nTo: team@acme.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@acme.test>\r\n\r\n" + secretToken + " " + subject + "\r\n"
}

// normalize replaces the mailbox name a command carried by NAME, so that the answers
// for two names can be compared.
func normalize(rep imapReply, names ...string) string {
	s := rep.String()
	for _, n := range names {
		s = strings.ReplaceAll(s, quote(n), "NAME")
		s = strings.ReplaceAll(s, n, "NAME")
	}
	return s
}

func TestIsolationAdversarial(t *testing.T) {
	srv := startServe(t, t.TempDir(), "--no-demo")
	admin := func(args ...string) {
		t.Helper()
		srv.mustAdmin(t, args...)
	}
	admin("tenant", "add", "acme", "--domains", "acme.test")
	admin("tenant", "add", "globex", "--domains", "globex.test")
	for _, u := range []string{"alice@acme.test", "bob@acme.test", "mallory@globex.test"} {
		admin("user", "add", u, "--password", "pw-"+u)
	}

	alice := dialRaw(t, srv.imapAddr, "alice@acme.test", "pw-alice@acme.test")
	for _, box := range []string{"Projects", "Secret", "Projects/Sub"} {
		if rep := alice.cmd("CREATE " + quote(box)); !rep.ok() {
			t.Fatalf("alice CREATE %s: %s", box, rep)
		}
	}
	for _, box := range []string{"INBOX", "Projects", "Secret"} {
		if rep := alice.cmd("APPEND " + quote(box) + " " + lit(isolationMessage("in-"+box))); !rep.ok() {
			t.Fatalf("alice APPEND %s: %s", box, rep)
		}
	}
	// Bob gets lr on Projects; "anyone" gets lr on Projects/Sub: anyone means anyone of
	// acme, never globex.
	if rep := alice.cmd(`SETACL "Projects" "bob@acme.test" "lr"`); !rep.ok() {
		t.Fatalf("SETACL bob: %s", rep)
	}
	if rep := alice.cmd(`SETACL "Projects/Sub" "anyone" "lr"`); !rep.ok() {
		t.Fatalf("SETACL anyone: %s", rep)
	}
	// SETACL naming an account of another tenant is refused (RFC 4314 3.1: NO).
	for _, id := range []string{"mallory@globex.test", "-mallory@globex.test", "mallory@nowhere.test", "bad\x01id"} {
		rep := alice.send([]byte(`SETACL "Projects" ` + lit(id) + ` "lr"`))
		if rep.ok() || !strings.Contains(rep.status, "[") {
			t.Errorf("SETACL for %q: %s, want NO/BAD with a response code", id, rep)
		}
	}
	admin("mailbox", "create", "--tenant", "acme", "Support")
	admin("acl", "set", "--tenant", "acme", "Support", "anyone", "lrs")

	mallory := dialRaw(t, srv.imapAddr, "mallory@globex.test", "pw-mallory@globex.test")
	if rep := mallory.cmd("APPEND INBOX " + lit("Subject: mine\r\n\r\nmallory's own\r\n")); !rep.ok() {
		t.Fatalf("mallory APPEND: %s", rep)
	}
	bob := dialRaw(t, srv.imapAddr, "bob@acme.test", "pw-bob@acme.test")

	// Every command on a name that exists but is forbidden answers exactly as on a
	// name that does not exist (RFC 4314 6).
	probes := []func(name string) string{
		func(n string) string { return "SELECT " + quote(n) },
		func(n string) string { return "EXAMINE " + quote(n) },
		func(n string) string { return "STATUS " + quote(n) + " (MESSAGES UIDNEXT UNSEEN SIZE)" },
		func(n string) string { return "APPEND " + quote(n) + " " + lit("Subject: x\r\n\r\nx\r\n") },
		func(n string) string { return "DELETE " + quote(n) },
		func(n string) string { return "RENAME " + quote(n) + ` "Stolen"` },
		func(n string) string { return "CREATE " + quote(n+"/Child") },
		func(n string) string { return "GETACL " + quote(n) },
		func(n string) string { return "SETACL " + quote(n) + ` "anyone" "lrswipkxtea"` },
		func(n string) string { return "DELETEACL " + quote(n) + ` "anyone"` },
		func(n string) string { return "MYRIGHTS " + quote(n) },
		func(n string) string { return "LISTRIGHTS " + quote(n) + ` "anyone"` },
		func(n string) string { return "GETQUOTAROOT " + quote(n) },
		func(n string) string { return `LIST "" ` + quote(n) },
		func(n string) string { return "LIST " + quote(n+"/") + ` "*"` },
	}
	type pair struct {
		who                *rawIMAP
		forbidden, missing string
	}
	pairs := []pair{
		{mallory, "Other Users/alice@acme.test/Projects", "Other Users/nobody@acme.test/Projects"},
		{mallory, "Other Users/alice@acme.test/INBOX", "Other Users/nobody@acme.test/INBOX"},
		{mallory, "Other Users/alice@acme.test/Secret", "Other Users/alice@acme.test/NoSuchBox"},
		{mallory, "Other Users/alice@acme.test/Projects/Sub", "Other Users/alice@acme.test/Projects/Nope"},
		{mallory, "Shared/Support", "Shared/NoSuchShared"},
		{bob, "Other Users/alice@acme.test/Secret", "Other Users/alice@acme.test/NoSuchBox"},
		{bob, "Other Users/alice@acme.test/INBOX", "Other Users/nobody@acme.test/INBOX"},
	}
	for _, p := range pairs {
		for _, probe := range probes {
			a := p.who.cmd(probe(p.forbidden))
			b := p.who.cmd(probe(p.missing))
			if got, want := normalize(a, p.forbidden), normalize(b, p.missing); got != want {
				t.Errorf("%q vs %q differ:\n%s\n--- vs ---\n%s", probe(p.forbidden), probe(p.missing), got, want)
			}
			if a.ok() && !strings.HasPrefix(probe(p.forbidden), "LIST") {
				t.Errorf("%s answered OK: %s", probe(p.forbidden), a)
			}
		}
	}

	// Names that try to reach another account directly, and hostile bytes.
	hostile := []string{
		"../alice@acme.test/INBOX", "alice@acme.test/INBOX", "~alice/INBOX", "#shared/Support",
		"Other Users/../alice@acme.test/Projects", "Other Users/ALICE@ACME.TEST/Projects",
		"Other Users/alice@acme.test/./Projects", "Other Users//alice@acme.test/Projects",
		"Shared/../Support", "INBOX\x00alice", "Projects\rX", "Projects\nX", "Proj\xffects",
		strings.Repeat("a/", 10000) + "a",
	}
	for _, n := range hostile {
		verbs := []string{"SELECT", "STATUS", "DELETE", "GETACL", "MYRIGHTS", "GETQUOTAROOT", "RENAME"}
		if strings.ContainsAny(n, "\x00\r\n") || !utf8.ValidString(n) || len(n) > 1000 {
			// Names no mailbox may have: CREATE is refused too (a plain odd name like
			// "~alice/INBOX" would just be a mailbox of mallory's own).
			verbs = append(verbs, "CREATE")
		}
		for _, verb := range verbs {
			line := verb + " " + lit(n)
			switch verb {
			case "STATUS":
				line += " (MESSAGES)"
			case "RENAME":
				line += ` "Stolen"`
			}
			rep := mallory.send([]byte(line))
			if rep.ok() {
				t.Errorf("%s %q answered OK: %s", verb, n, rep)
			}
			if !strings.HasPrefix(rep.status, "NO") && !strings.HasPrefix(rep.status, "BAD") {
				t.Errorf("%s %q: %s", verb, n, rep)
			}
		}
	}

	// LIST patterns that try to escape show nothing of acme.
	for _, pat := range []string{"*", "%", "Other Users/*", "Other Users/%", "Other Users/%/%", "Shared/*", "*/*", "../*", "*alice*", "%/%/%", strings.Repeat("*a", 500) + "x", strings.Repeat("%/", 2000)} {
		for _, ref := range []string{"", "Other Users/", "Other Users/alice@acme.test/", "Shared/"} {
			rep := mallory.send([]byte(`LIST ` + quote(ref) + " " + lit(pat)))
			for _, l := range rep.untagged {
				if strings.Contains(strings.ToLower(l), "acme") || strings.Contains(l, "alice") || strings.Contains(l, "Support") || strings.Contains(l, "Projects") {
					t.Errorf("LIST %q %q leaked: %s", ref, pat, l)
				}
			}
		}
		rep := mallory.send([]byte(`LIST (SUBSCRIBED RECURSIVEMATCH) "" ` + lit(pat) + ` RETURN (CHILDREN STATUS (MESSAGES))`))
		if strings.Contains(rep.String(), "acme") {
			t.Errorf("LIST-EXTENDED %q leaked: %s", pat, rep)
		}
	}

	// Bob sees exactly what was shared with him; the tenant-shared Support too.
	rep := bob.cmd(`LIST "" "*"`)
	listing := rep.String()
	for _, want := range []string{`"Other Users/alice@acme.test/Projects"`, `"Other Users/alice@acme.test/Projects/Sub"`, ` Shared/Support`} {
		if !strings.Contains(listing, want) {
			t.Errorf("bob's LIST lacks %s:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "Secret") || strings.Contains(listing, "alice@acme.test/INBOX") {
		t.Errorf("bob's LIST shows what was not shared:\n%s", listing)
	}

	// Message sets outside the visible ones select nothing of anyone else.
	if rep := mallory.cmd("SELECT INBOX"); !rep.ok() {
		t.Fatalf("mallory SELECT INBOX: %s", rep)
	}
	for _, line := range []string{
		"UID FETCH 1:* (BODY.PEEK[])", "UID FETCH 1:4294967295 (BODY.PEEK[] FLAGS)", "FETCH 1:* (ENVELOPE BODY.PEEK[])",
		"FETCH 2 (BODY.PEEK[])", "FETCH 4294967295 (BODY.PEEK[])", "FETCH 0 (FLAGS)", "UID FETCH 2:100 (BODY.PEEK[])",
		"UID SEARCH ALL", "SEARCH TEXT " + quote(secretToken), "UID COPY 1:* " + quote("Other Users/alice@acme.test/Projects"),
		"UID MOVE 1:* " + quote("Shared/Support"), "UID STORE 1:* +FLAGS (\\Deleted)", "UID EXPUNGE 1:4294967295",
		"FETCH 1 (BODY.PEEK[1.2.3.4.5.6.7.8.9.10]<0.100000>)",
	} {
		mallory.cmd(line)
	}

	// Nothing of acme ever reached mallory: not the secret token, not a name.
	transcript := mallory.seen.String()
	for _, leak := range []string{secretToken, "in-INBOX", "in-Projects", "in-Secret", "bob@acme.test"} {
		if strings.Contains(transcript, leak) {
			t.Errorf("mallory's transcript contains %q", leak)
		}
	}

	// Alice's mail is untouched: three messages in three mailboxes, nothing new.
	for _, box := range []string{"INBOX", "Projects", "Secret"} {
		rep := alice.cmd("STATUS " + quote(box) + " (MESSAGES)")
		if !rep.ok() || !strings.Contains(rep.String(), "(MESSAGES 1)") {
			t.Errorf("alice STATUS %s after the attacks: %s", box, rep)
		}
	}
	if rep := alice.cmd(`LIST "" "*"`); strings.Contains(rep.String(), "Stolen") || strings.Contains(rep.String(), "/Child") {
		t.Errorf("alice's mailboxes changed: %s", rep)
	}
	// And the server still serves everyone.
	if rep := mallory.cmd("NOOP"); !rep.ok() {
		t.Errorf("mallory NOOP: %s", rep)
	}
}
