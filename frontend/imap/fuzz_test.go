package imap_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// serverSeeds are commands as clients send them; FuzzServer sends each, mutated, in every
// connection state.
var serverSeeds = []string{
	"CAPABILITY", "NOOP", "LOGIN demo@example.com demo", "AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS5jb20AZGVtbw==",
	`LIST "" "*"`, `LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)`, "SELECT INBOX", "EXAMINE INBOX",
	"STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)", "CREATE Fuzz", "RENAME Fuzz Fuzz2", "DELETE Fuzz2",
	"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODYSTRUCTURE ENVELOPE)",
	"UID FETCH 1:* (BODY[]<0.10> RFC822.SIZE INTERNALDATE)", "STORE 1 +FLAGS (\\Seen)", "UID STORE 1:* -FLAGS.SILENT (\\Seen)",
	"SEARCH ALL", "UID SEARCH OR UNSEEN FROM alice", "COPY 1 INBOX", "UID MOVE 1 Trash", "EXPUNGE", "UID EXPUNGE 1:*",
	"APPEND INBOX (\\Seen) {3+}\r\nabc", "APPEND INBOX ~{6+}\r\na\x00\r\nb\x00", "ENABLE IMAP4rev2", "ENABLE UTF8=ACCEPT", `ID ("name" "fuzz")`, "ID NIL", "NAMESPACE", "UNSELECT", "CLOSE", "CHECK",
	"SEARCH RETURN (SAVE MIN) FLAGGED", "UID FETCH $ (BINARY.PEEK[1]<0.5> BINARY.SIZE[1])", "STORE $ FLAGS.SILENT ($Fuzz)",
	"SEARCH CHARSET UTF-8 TEXT {2+}\r\n\xc3\xa9", "FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS.NOT (X)]<1.2> RFC822.TEXT)",
	"MYRIGHTS INBOX", "GETACL INBOX", "LISTRIGHTS INBOX anyone", "SETACL Archive anyone +lr", "DELETEACL Archive anyone",
	"COMPRESS X-UNKNOWN", "UNAUTHENTICATE", "SEARCH TEXT {5000+}\r\n" + strings.Repeat("x", 5000),
	`SELECT "Other Users/alice@example.com/INBOX"`, `LIST "Other Users/" "%"`, "STATUS Shared/Support (MESSAGES DELETED-STORAGE)",
	`GETMETADATA "" /shared/comment`, `GETMETADATA (DEPTH infinity MAXSIZE 10) INBOX (/private /shared)`,
	`SETMETADATA INBOX (/private/comment "fuzz" /shared/comment NIL)`, "SETMETADATA \"\" (/private/vendor/fuzz/b ~{3+}\r\na\x00b)",
	`SETMETADATA Junk (/private/specialuse "\\Junk")`,
	"UID FETCH 1:* (EMAILID THREADID)", "SEARCH OR EMAILID M1 NOT THREADID T1", `LIST "" "*" RETURN (STATUS (MAILBOXID))`,
	"NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
	"NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (subtree (INBOX Archive) (MessageNew MessageExpunge)) (mailboxes Sent NONE)",
	"NOTIFY SET (personal (MailboxMetadataChange))", "NOTIFY NONE",
	"UID SEARCH RETURN (ALL RELEVANCY) FUZZY SUBJECT quartely", "SEARCH OR FUZZY TEXT {3+}\r\nabc NOT FUZZY (BODY sushy SEEN)",
	"UID SORT (REVERSE RELEVANCY DATE) UTF-8 FUZZY FROM alicee",
	"UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk", "SEARCH RETURN (PARTIAL 1:5 UPDATE) OR 1:3 SUBJECT m UNSEEN",
	"UID SORT RETURN (UPDATE CONTEXT MIN) (REVERSE SUBJECT) UTF-8 NOT $", `CANCELUPDATE "x1" "x2"`,
	`ESEARCH IN (mailboxes "INBOX" subtree-one "Archive") RETURN (MIN MAX COUNT) SUBJECT "fuzz"`, "ESEARCH IN (personal subscribed inboxes) UNSEEN",
	`ESEARCH IN (selected-delayed subtree ("Other Users" Shared)) RETURN (SAVE) OR 1:3 BODY fuzz`, "ESEARCH RETURN () NOT $",
	"AUTHENTICATE OAUTHBEARER bixhPWRlbW9AZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIGV5SmhiR2NpT2lKU1V6STFOaUlzSW10cFpDSTZJbkp6TVNKOS5leUpwYzNNaU9pSm9kSFJ3Y3pvdkwybGtMbVY0WVcxd2JHVXVZMjl0SWl3aVpXMWhhV3dpT2lKa1pXMXZRR1Y0WVcxd2JHVXVZMjl0SW4wLmMybG4BAQ==", "AUTHENTICATE XOAUTH2 dXNlcj1kZW1vQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIGV5SmhiR2NpT2lKU1V6STFOaUlzSW10cFpDSTZJbkp6TVNKOS5leUpwYzNNaU9pSm9kSFJ3Y3pvdkwybGtMbVY0WVcxd2JHVXVZMjl0SWl3aVpXMWhhV3dpT2lKa1pXMXZRR1Y0WVcxd2JHVXVZMjl0SW4wLmMybG4BAQ==", "AUTHENTICATE OAUTHBEARER",
}

// FuzzServer sends a command to a live server in each connection state (not authenticated,
// authenticated, selected) and checks that the server answers it and keeps serving. `go
// test` runs the seeds.
func FuzzServer(f *testing.F) {
	for _, s := range serverSeeds {
		f.Add(s)
	}
	srv := startServer(f)
	appendMessage(f, login(f, srv), "INBOX", testMessage("fuzz", "fuzz body"))
	f.Fuzz(func(t *testing.T, command string) {
		if strings.ContainsAny(command, "\r\n") && !strings.Contains(command, "{") {
			t.Skip("one line per command, except literals")
		}
		if strings.Contains(command, "\nn") || strings.Contains(command, "\rn") {
			t.Skip("a line of the input tagged n would be answered in place of the check's NOOP")
		}
		if upper := strings.ToUpper(command); strings.HasPrefix(upper, "IDLE") || strings.Contains(upper, "LOGOUT") || strings.Contains(upper, "STARTTLS") || strings.Contains(upper, "DEFLATE") {
			t.Skip("commands that wait, end the session, start TLS or compression are tested elsewhere")
		}
		// A panic shows here as a lost connection; the server's count names it (and the
		// check of startServer prints its stack when the fuzz target ends).
		panics := srv.IMAPRecoveredPanics()
		t.Cleanup(func() {
			if n := srv.IMAPRecoveredPanics(); n != panics {
				t.Errorf("%q: the IMAP engine recovered %d panic(s)", command, n-panics)
			}
		})
		for _, setup := range [][]string{nil, {"LOGIN demo@example.com demo"}, {"LOGIN demo@example.com demo", "SELECT INBOX"}} {
			conn, err := net.Dial("tcp", srv.IMAPAddr())
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			send := func(tag, line string) string {
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				conn.Write([]byte(tag + " " + line + "\r\n"))
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("%q: connection lost: %v", line, err)
					}
					if strings.HasPrefix(l, "+ ") && tag == "f" {
						conn.Write([]byte("\r\n")) // abandon a literal or SASL exchange
					}
					if strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "* BYE") || strings.HasPrefix(l, "* BAD") {
						return l
					}
				}
			}
			r.ReadString('\n')
			for i, line := range setup {
				send("s"+string(rune('0'+i)), line)
			}
			if l := send("f", command); strings.HasPrefix(l, "* BYE") {
				conn.Close()
				continue
			}
			if l := send("n", "NOOP"); !strings.HasPrefix(l, "n OK") && !strings.HasPrefix(l, "* BAD") {
				t.Fatalf("after %q: NOOP answered %q", command, l)
			}
			conn.Close()
		}
	})
}
