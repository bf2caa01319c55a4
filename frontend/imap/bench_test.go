package imap_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// benchMessages is the size of the mailbox BenchmarkMailbox100k searches and fetches.
const benchMessages = 100_000

// BenchmarkMailbox100k measures SEARCH and FETCH on a 100,000-message INBOX over a socket,
// the client reading every response byte. Every tenth message is \Flagged; subjects are
// "bench-NNNNNN". The mailbox is filled through the metadata gRPC Append in batches whose
// messages share one stored body (the blob is Put once by an IMAP APPEND; each message gets
// its own header and envelope in the metadata), so filling takes seconds and is not timed.
//
//	go test ./frontend -run '^$' -bench BenchmarkMailbox100k -benchtime 5x
func BenchmarkMailbox100k(b *testing.B) {
	srv := startServerWith(b, func(cfg *embedded.Config) {
		cfg.MaxMessageSize = 1 << 20
		cfg.DisableSearchIndex = os.Getenv("STRATA_NO_SEARCH_INDEX") != ""
		cfg.IMAPLimits.MaxBodyScan = 1 << 30 // SearchBody reads every body without the index
		cfg.IMAPLimits.SearchTimeout = time.Hour
	})
	fillMailbox(b, srv, benchMessages)
	if srv.SearchIndex() != nil {
		waitIndexed(b, srv, embedded.DemoAccount, "INBOX") // the search index answers SEARCH SUBJECT and HEADER
	}
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	commands := append(slices.Clone(benchCommands), []struct{ name, command string }{
		{"SearchBodyCommon", "SEARCH BODY benchmark"}, // every message: their body is "benchmark body text"
		{"SearchSubjectCommon", "SEARCH SUBJECT bench"},
	}...)
	for _, bm := range commands {
		b.Run(bm.name, func(b *testing.B) { bc.bench(b, bm.command) })
	}
}

// benchCommands are the commands the mailbox benchmarks run.
var benchCommands = []struct{ name, command string }{
	{"UIDSearchFlagged", "UID SEARCH FLAGGED"},
	{"UIDSearchUnflaggedUnseen", "UID SEARCH UNFLAGGED UNSEEN"},
	{"SearchSubject", "SEARCH SUBJECT bench-099999"},
	{"SearchHeader", "SEARCH HEADER Message-ID bench-050000"},
	{"FetchAllFlags", "FETCH 1:* (FLAGS)"},
	{"UIDFetchLast50Envelope", fmt.Sprintf("UID FETCH %d:* (ENVELOPE)", benchMessages-49)},
}

// BenchmarkSharedMailbox100k measures what RFC 4314 access control costs on a large shared
// mailbox: the commands of BenchmarkMailbox100k on the same 100,000-message INBOX, run by
// its owner ("Owner/...") and by bob@example.com, whom the owner granted lrs, through
// "Other Users/demo@example.com/INBOX" ("Shared/..."). For bob the frontend checks his
// rights before each command (from the shared view's feed since issue 14, a GetMailbox
// before), and the metadata service checks them on every call and gives him his own \Seen.
//
//	go test ./frontend -run '^$' -bench BenchmarkSharedMailbox100k -benchtime 5x
func BenchmarkSharedMailbox100k(b *testing.B) {
	benchShared(b, benchMessages, benchCommands)
}

// BenchmarkSharedMailboxCommand is BenchmarkSharedMailbox100k for the cost of a command
// itself: a 1,000-message INBOX and commands that read little, so that the rights check
// before each command is a visible part of bob's time.
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkSharedMailboxCommand -benchtime 2000x
func BenchmarkSharedMailboxCommand(b *testing.B) {
	benchShared(b, 1000, []struct{ name, command string }{
		{"Noop", "NOOP"},
		{"UIDSearchFlagged", "UID SEARCH FLAGGED"},
		{"UIDFetchLast20Flags", "UID FETCH 981:* (FLAGS)"},
	})
}

// shareInboxWithBob creates bob and grants him rights on demo's INBOX (RFC 4314).
func shareInboxWithBob(b testing.TB, srv *embedded.Server, rights string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	md := srv.Metadata()
	if _, err := md.CreateAccount(ctx, &metadatapb.CreateAccountRequest{RequestId: randomID(), Email: bob, Password: testPassword}); err != nil {
		b.Fatal(err)
	}
	if _, err := md.SetAcl(ctx, &metadatapb.SetAclRequest{
		RequestId: randomID(), Account: embedded.DemoAccount, Name: "INBOX", Identifier: bob, Rights: rights,
	}); err != nil {
		b.Fatal(err)
	}
}

// benchShared runs commands in the owner's and bob's sessions of an INBOX of n messages.
func benchShared(b *testing.B, n int, commands []struct{ name, command string }) {
	srv := startServerWith(b, func(cfg *embedded.Config) { cfg.MaxMessageSize = 1 << 20 })
	fillMailbox(b, srv, n)
	shareInboxWithBob(b, srv, "lrs")
	sessions := []struct {
		name string
		bc   *benchConn
	}{
		{"Owner", dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")},
		{"Shared", dialBench(b, srv, bob, testPassword, `"Other Users/demo@example.com/INBOX"`)},
	}
	for _, bm := range commands {
		for _, s := range sessions {
			b.Run(s.name+"/"+bm.name, func(b *testing.B) { s.bc.bench(b, bm.command) })
		}
	}
}

// dialBench logs in as user and selects mailbox (as the command takes it).
func dialBench(b *testing.B, srv *embedded.Server, user, password, mailbox string) *benchConn {
	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	bc := &benchConn{b: b, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	bc.r.ReadString('\n') // greeting
	bc.run("LOGIN " + user + " " + password)
	if n := bc.run("SELECT " + mailbox); n == 0 {
		b.Fatal("SELECT returned nothing")
	}
	return bc
}

// fillMailbox appends one message over IMAP, then n-1 copies of its record through the
// metadata Append with per-message subjects and Message-IDs of the same length.
func fillMailbox(b testing.TB, srv *embedded.Server, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mbox, rec := benchSeed(ctx, b, srv)
	appendCopies(ctx, b, srv, mbox, rec, 1, n, func(i int) string { return fmt.Sprintf("bench-%06d", i) })
}

// appendCopies appends copies first to n-1 of rec (a benchSeed record) to mbox of the demo
// account through the metadata Append, in batches: copy i has the subject and Message-ID
// name(i), 12 characters as "bench-000000" has, and every tenth is \Flagged.
func appendCopies(ctx context.Context, b testing.TB, srv *embedded.Server, mbox *metadatapb.Mailbox, rec *metadatapb.MessageRecord, first, n int, name func(i int) string) {
	b.Helper()
	const batch = 1000
	for start := first; start < n; start += batch {
		req := &metadatapb.AppendRequest{RequestId: randomID(), Account: embedded.DemoAccount, MailboxId: mbox.GetId()}
		for i := start; i < min(start+batch, n); i++ {
			name := name(i)
			st := proto.Clone(rec.GetStructure()).(*metadatapb.MessageStructure)
			st.Header = bytes.ReplaceAll(st.GetHeader(), []byte("bench-000000"), []byte(name))
			st.Envelope.Subject = name
			st.Envelope.MessageId = "<" + name + "@example.org>"
			var flags []string
			if i%10 == 0 {
				flags = []string{`\Flagged`}
			}
			req.Messages = append(req.Messages, &metadatapb.NewMessage{
				BlobKey: rec.GetBlobKey(), Size: rec.GetSize(), InternalDateUnix: rec.GetInternalDateUnix() + int64(i),
				Flags: flags, Structure: st,
			})
		}
		if _, err := srv.Metadata().Append(ctx, req); err != nil {
			b.Fatalf("append batch at %d: %v", start, err)
		}
	}
}

// benchSeed appends the first message of a benchmark mailbox over IMAP and returns the
// INBOX and that message's record with its structure, which the fills copy.
func benchSeed(ctx context.Context, b testing.TB, srv *embedded.Server) (*metadatapb.Mailbox, *metadatapb.MessageRecord) {
	b.Helper()
	c := login(b, srv)
	appendMessage(b, c, "INBOX", testMessage("bench-000000", "benchmark body text"))
	c.Logout()
	md := srv.Metadata()
	mbox, err := md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: embedded.DemoAccount, Name: "INBOX"})
	if err != nil {
		b.Fatal(err)
	}
	stream, err := md.FetchMessages(ctx, &metadatapb.FetchMessagesRequest{
		Account: embedded.DemoAccount, MailboxId: mbox.GetId(), Uids: []*metadatapb.UidRange{{First: 1, Last: 1}}, WithStructure: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	rec, err := stream.Recv()
	if err != nil {
		b.Fatal(err)
	}
	return mbox, rec
}

func randomID() string {
	var id [16]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// benchConn is a raw IMAP connection that reads responses without keeping them.
type benchConn struct {
	b    *testing.B
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// bench runs command b.N times and reports the bytes of one response.
func (bc *benchConn) bench(b *testing.B, command string) {
	bc.b = b
	var bytesRead int
	for b.Loop() {
		bytesRead = bc.run(command)
	}
	b.ReportMetric(float64(bytesRead), "resp-bytes")
}

// run sends a command, reads the responses up to its tagged OK and returns the bytes read.
func (bc *benchConn) run(command string) int {
	bc.n++
	tag := fmt.Sprintf("b%d", bc.n)
	if _, err := io.WriteString(bc.conn, tag+" "+command+"\r\n"); err != nil {
		bc.b.Fatal(err)
	}
	bc.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	total := 0
	for {
		line, err := bc.r.ReadSlice('\n')
		total += len(line)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			bc.b.Fatalf("%s: %v", command, err)
		}
		if i := bytes.LastIndexByte(line, '{'); i >= 0 && bytes.HasSuffix(line, []byte("}\r\n")) {
			var size int64
			if _, err := fmt.Sscanf(string(line[i:]), "{%d}", &size); err == nil {
				if _, err := io.CopyN(io.Discard, bc.r, size); err != nil {
					bc.b.Fatal(err)
				}
				total += int(size)
				continue
			}
		}
		if bytes.HasPrefix(line, []byte(tag+" ")) {
			if !bytes.HasPrefix(line, []byte(tag+" OK")) {
				bc.b.Fatalf("%s: %s", command, line)
			}
			return total
		}
	}
}

// BenchmarkCommandCycle measures the round trip of a command with little to do, one at a
// time on one connection, the client waiting for each tagged OK: what a command costs
// beyond its work, parking between commands included (park.go: the read buffer given back
// and taken again, the wait in a new goroutine).
//
//	go test ./frontend/imap -run '^$' -bench BenchmarkCommandCycle
func BenchmarkCommandCycle(b *testing.B) {
	srv := startServer(b)
	appendMessage(b, login(b, srv), "INBOX", testMessage("cycle", "body"))
	bc := dialBench(b, srv, embedded.DemoAccount, embedded.DemoPassword, "INBOX")
	for _, bm := range []struct{ name, command string }{{"NOOP", "NOOP"}, {"UIDFetchFlags", "UID FETCH 1 (FLAGS)"}} {
		b.Run(bm.name, func(b *testing.B) { bc.bench(b, bm.command) })
	}
}
