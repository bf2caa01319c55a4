package managesieve_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/managesieve"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// smallLimits keep the bad-input tests' octets few.
func smallLimits(c *managesieve.Config) {
	c.Limits = managesieve.Limits{MaxScriptSize: 64, MaxDiscard: 256, MaxLine: 128, MaxBadCommands: 100}
}

// TestSyntaxErrors: a command that cannot be read is answered NO and skipped whole, with
// any literal its line announces, so the next command is read in step (RFC 5804 4).
func TestSyntaxErrors(t *testing.T) {
	c, _ := dial(t, startSieve(t, smallLimits))
	c.expect("FROB", `NO "Unknown command FROB"`)
	c.expect(`NOOP "unterminated`, `NO "NUL, CR or LF in a quoted string; send a literal"`)
	c.expect(`NOOP "bad \x escape"`, `NO "invalid escape \\x in a quoted string"`)
	c.expect(`NOOP atom`, `NO "expected a string (quoted or literal) or a number"`)
	c.expect(`NOOP ("x")`, `NO "expected a string (quoted or literal) or a number"`)
	// The rest of a bad line announces a literal: its octets are skipped too, not run.
	c.expect("NOOP ) {8+}\r\nLOGOUT\r\n", `NO "expected a string (quoted or literal) or a number"`)
	c.expect("NOOP {x}", `NO "malformed literal: expected {number+} or {number}"`)
	c.expect("NOOP \"a\"\"b\"", `NO "unexpected '\"' after the command name or an argument"`)
	c.expect(`NOOP "`+strings.Repeat("a", 100)+`"`, `OK (TAG "`+strings.Repeat("a", 100)+`") "Done"`)
	c.expect(" NOOP", `NO "expected a command name"`)
	c.expect(`NOOP "x" "y"`, `NO "NOOP takes a string (optional)"`)
	c.expect(`NOOP "tag"`, `OK (TAG "tag") "Done"`)
}

// TestTooManyBadCommands: a client that does not speak ManageSieve is told BYE.
func TestTooManyBadCommands(t *testing.T) {
	c, _ := dial(t, startSieve(t, func(c *managesieve.Config) { c.Limits.MaxBadCommands = 4 }))
	c.expect("GET / HTTP/1.1", `NO "expected a string (quoted or literal) or a number"`)
	c.expect("Host: example.com", `NO "unexpected ':' after the command name or an argument"`)
	c.expect("NOOP", `OK "Done"`) // a good command resets the count
	c.expect("A", `NO "Unknown command A"`)
	c.expect("B", `NO "Unknown command B"`)
	c.expect("C", `NO "Unknown command C"`)
	c.expect("D", `BYE "Too many invalid commands"`)
	c.closed()
}

// TestLongLine: a command line over Limits.MaxLine ends the session with BYE; the server
// holds no more of it than the limit.
func TestLongLine(t *testing.T) {
	c, _ := dial(t, startSieve(t, smallLimits))
	c.expect(`NOOP "`+strings.Repeat("a", 200)+`"`, `BYE "Command line too long"`)
	c.closed()
}

// TestLargeLiterals: a literal over Limits.MaxScriptSize is read and dropped and its command
// refused with QUOTA/MAXSIZE, the session going on; one over MaxDiscard ends it (BYE).
func TestLargeLiterals(t *testing.T) {
	c := login(t, startSieve(t, smallLimits))
	big := strings.Repeat("#", 100)
	c.expect(`PUTSCRIPT "big" `+literal(big), `NO (QUOTA/MAXSIZE) "A string of 100 octets is more than this server accepts (64)"`)
	c.expect("CHECKSCRIPT {100}\r\n"+big, `NO (QUOTA/MAXSIZE) "A string of 100 octets is more than this server accepts (64)"`)
	// Two literals together over the limit: the second is dropped.
	c.expect(`PUTSCRIPT `+literal(strings.Repeat("n", 40))+` `+literal("keep;"+strings.Repeat(" ", 30)),
		`NO (QUOTA/MAXSIZE) "A string of 35 octets is more than this server accepts (64)"`)
	c.expect("LISTSCRIPTS", `OK "Listscripts completed"`)
	c.expect(`PUTSCRIPT "huge" {1000+}`, `BYE (QUOTA/MAXSIZE) "Literal too large"`)
	c.closed()
}

// TestLongAuthenticateResponse: the client's SASL line has the limits of a command.
func TestLongAuthenticateResponse(t *testing.T) {
	c, _ := dial(t, startSieve(t, smallLimits))
	c.challenge(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(literal(strings.Repeat("A", 100)), `NO "Authentication response too long"`)
	c.challenge(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(`"unterminated`, `NO "Malformed authentication response: NUL, CR or LF in a quoted string; send a literal"`)
	c.challenge(`AUTHENTICATE "PLAIN"`, `""`)
	c.expect(`"`+strings.Repeat("A", 200)+`"`, `BYE "Command line too long"`)
	c.closed()
}

// TestConnectionLimit: over Limits.MaxConnections a client is told BYE (TRYLATER).
func TestConnectionLimit(t *testing.T) {
	addr := startSieve(t, func(c *managesieve.Config) { c.Limits.MaxConnections = 1 })
	first, _ := dial(t, addr)
	second := rawDial(t, addr)
	if l := second.line(); l != `BYE (TRYLATER) "Too many connections to this server, try again later"` {
		t.Fatalf("second connection: %q", l)
	}
	second.closed()
	first.expect("NOOP", `OK "Done"`)
}

// TestShutdown: Shutdown tells a waiting client BYE (TRYLATER).
func TestShutdown(t *testing.T) {
	srv, addr := startSieveServer(t, nil)
	c := login(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != `BYE (TRYLATER) "Server shutting down, reconnect to continue"` {
		t.Fatalf("at shutdown: %q", l)
	}
	c.closed()
}

// TestTryLater: when the metadata service cannot be reached, commands answer NO (TRYLATER)
// (RFC 5804 1.3) and the session stays.
func TestTryLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more: every call is Unavailable
	conn, err := grpc.NewClient(dead, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := managesieve.NewServer(managesieve.Config{
		Metadata: metadatapb.NewMetadataClient(conn), TrustLoopback: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	sieveLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(sieveLn)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c, _ := dial(t, sieveLn.Addr().String())
	c.expect(`AUTHENTICATE "PLAIN" "`+plain("", embedded.DemoAccount, embedded.DemoPassword)+`"`,
		`NO (TRYLATER) "AUTHENTICATE: the mail store is busy, try again later"`)
	c.expect("NOOP", `OK "Done"`)
}
