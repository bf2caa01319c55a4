package imap_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// compression is the client side of COMPRESS DEFLATE on a rawConn, with compress/flate: a
// DEFLATE implementation other than the server's.
type compression struct {
	conn     net.Conn
	received int64         // compressed bytes read from conn
	below    *bufio.Reader // conn's bytes, read through received
	inflate  io.ReadCloser
}

func (z *compression) Read(p []byte) (int, error) {
	n, err := z.conn.Read(p)
	z.received += int64(n)
	return n, err
}

// compress sends COMPRESS DEFLATE and, after its OK, compresses what rc sends (a sync flush
// after each write) and decompresses what it reads.
func (rc *rawConn) compress() *compression {
	rc.t.Helper()
	rc.ok("COMPRESS DEFLATE")
	if n := rc.r.Buffered(); n != 0 {
		rc.t.Fatalf("%d bytes after the COMPRESS response", n)
	}
	z := &compression{conn: rc.conn}
	z.below = bufio.NewReader(z)
	z.inflate = flate.NewReader(z.below)
	rc.r = bufio.NewReader(z.inflate)
	deflate, err := flate.NewWriter(&rc.deflated, flate.BestSpeed)
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.deflate = deflate
	return z
}

func TestCompress(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " COMPRESS=DEFLATE") {
		t.Fatalf("CAPABILITY after login lacks COMPRESS=DEFLATE: %q", caps)
	}
	z := rc.compress()
	rc.ok("NOOP")
	// RFC 4978 3: a second COMPRESS is BAD, and compression goes on.
	rc.expect("COMPRESS DEFLATE", "BAD [COMPRESSIONACTIVE]")
	rc.ok("SELECT INBOX")

	// APPEND with a synchronising literal: the continuation request comes compressed, the
	// message is streamed through the decompressor into the spool.
	text := strings.Repeat("All work and no play makes Jack a dull boy.\r\n", 4000)
	msg := testMessage("compressed", text)
	rc.n++
	tag := fmt.Sprintf("x%d", rc.n)
	rc.writeExpect(fmt.Sprintf("%s APPEND INBOX {%d}\r\n", tag, len(msg)), "+ ")
	rc.write(msg + "\r\n")
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, "OK [APPENDUID ") {
		t.Fatalf("APPEND: %s", tagged)
	}
	// And with a non-synchronising one (RFC 7888).
	small := testMessage("small", "hello")
	rc.ok(fmt.Sprintf("APPEND INBOX (\\Seen) {%d+}\r\n%s", len(small), small))

	before := z.received
	untagged := rc.ok("UID FETCH 1 BODY.PEEK[]")
	if len(untagged) != 1 || !strings.Contains(untagged[0], msg) {
		t.Fatalf("FETCH BODY[] over COMPRESS: %d lines, body intact %v", len(untagged), len(untagged) == 1 && strings.Contains(untagged[0], msg))
	}
	if got := z.received - before; got > int64(len(msg))/20 {
		t.Errorf("FETCH of a %d-byte repetitive body read %d compressed bytes", len(msg), got)
	}
	if untagged := rc.ok("UID FETCH 2 (FLAGS BODY.PEEK[TEXT])"); !contains(untagged, "hello") {
		t.Fatalf("FETCH of the second message: %q", untagged)
	}

	// IDLE: the EXISTS of another session's APPEND arrives compressed at once.
	rc.startIdle("i1")
	appendMessage(t, login(t, srv), "INBOX", testMessage("while idling", "x"))
	for l := rc.readLine(); l != "* 3 EXISTS"; l = rc.readLine() {
		if !strings.HasSuffix(l, " RECENT") {
			t.Fatalf("during IDLE: %q, want * 3 EXISTS", l)
		}
	}
	rc.write("DONE\r\n")
	if _, tagged := rc.until("i1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("IDLE: %s", tagged)
	}

	untagged, tagged := rc.cmd("LOGOUT")
	if !contains(untagged, "BYE") || !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("LOGOUT: %q %q", untagged, tagged)
	}
}

func TestCompressRefused(t *testing.T) {
	srv := startServer(t)
	rc := dialRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); contains(caps, "COMPRESS") {
		t.Errorf("CAPABILITY before login offers COMPRESS: %q", caps) // a command-auth (RFC 4978 5)
	}
	rc.expect("COMPRESS DEFLATE", "BAD") // not in the not authenticated state
	rc.ok("LOGIN demo@example.com demo")
	rc.expect("COMPRESS GZIP", "BAD") // RFC 4978 3: unknown argument
	rc.expect("COMPRESS", "BAD")
	// Refused, the connection stays plain.
	rc.ok("SELECT INBOX")
	rc.expect("COMPRESS DEFLATE X", "BAD")
	rc.ok("NOOP")
}

// TestCompressLimits: the bounds of the framer hold for decompressed commands.
func TestCompressLimits(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	rc.compress()
	rc.write("l1 NOOP " + strings.Repeat("x", 70<<10) + "\r\n")
	if l := rc.readLine(); !strings.Contains(l, "BAD") || !strings.Contains(l, "Line too long") {
		t.Fatalf("a 70 KiB line: %q", l)
	}
	rc.expect(fmt.Sprintf("ID (\"x\" {%d+}\r\n%s)", 70<<10, strings.Repeat("y", 70<<10)), "BAD [LIMIT]")
	rc.ok("NOOP")
	rc.writeExpect(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", 2<<20), "a1 NO [TOOBIG]")
	rc.ok("NOOP")
}

func TestCompressOverTLS(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) {
		cfg.IMAPSListen = "127.0.0.1:0"
		cfg.AllowPlaintextAuth = false
		cfg.RequireTLSOnLoopback = true
	})
	rc := dialRaw(t, srv)
	rc.ok("STARTTLS")
	rc.handshake(srv)
	rc.ok("LOGIN demo@example.com demo")
	rc.compress() // TLS below, DEFLATE above
	msg := testMessage("over TLS and DEFLATE", "hello")
	rc.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))
	rc.ok("SELECT INBOX")
	if untagged := rc.ok("FETCH 1 BODY.PEEK[]"); !contains(untagged, msg) {
		t.Fatalf("FETCH over TLS and DEFLATE: %q", untagged)
	}
	rc.ok("LOGOUT")
}

// TestCompressPartialFlush is a client that ends each command with Z_PARTIAL_FLUSH, as
// mutt and neomutt do: no empty stored block follows the data, and the server reads the
// command all the same. The client is Python's zlib.
func TestCompressPartialFlush(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	srv := startServer(t)
	const script = `
import socket, sys, zlib
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
buf = b""
inflate = None
def read_until(tag):
    global buf
    while True:
        i = buf.find(b"\r\n")
        if i >= 0:
            line, buf = buf[:i], buf[i+2:]
            print(line.decode())
            if line.startswith(tag + b" "):
                return
            continue
        data = s.recv(65536)
        if not data:
            sys.exit("connection closed")
        buf += inflate.decompress(data) if inflate else data
read_until(b"*")
s.sendall(b"a LOGIN demo@example.com demo\r\n")
read_until(b"a")
s.sendall(b"b COMPRESS DEFLATE\r\n")
read_until(b"b")
inflate = zlib.decompressobj(-15)
deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
for tag, command in ((b"c", b"SELECT INBOX"), (b"d", b"APPEND INBOX {5+}\r\nhello"), (b"e", b"FETCH 1 BODY[]"), (b"f", b"LOGOUT")):
    s.sendall(deflate.compress(tag + b" " + command + b"\r\n") + deflate.flush(zlib.Z_PARTIAL_FLUSH))
    read_until(tag)
`
	out, err := exec.Command(python, "-c", script, srv.IMAPAddr()).CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	for _, want := range []string{"c OK [READ-WRITE]", "d OK [APPENDUID", "* 1 FETCH (BODY[] {5}", "f OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("python client output lacks %q:\n%s", want, out)
		}
	}
}

// TestCompressedIdleConnMemory measures what compression adds to an idle connection: the
// decompressor, which lives as long as compression, and no compressor, which a connection
// holds only while it sends a response (compress.go).
func TestCompressedIdleConnMemory(t *testing.T) {
	srv := startServer(t)
	const conns = 40
	type client struct {
		conn net.Conn
		r    *bufio.Reader
	}
	command := func(c client, line string) {
		t.Helper()
		c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
			t.Fatal(err)
		}
		tag, _, _ := strings.Cut(line, " ")
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %s", line, l)
				}
				return
			}
		}
	}
	clients := make([]client, conns)
	for i := range clients {
		conn, err := net.Dial("tcp", srv.IMAPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		clients[i] = client{conn, bufio.NewReader(conn)}
		clients[i].r.ReadString('\n')
		command(clients[i], "a LOGIN "+embedded.DemoAccount+" "+embedded.DemoPassword)
		command(clients[i], "b SELECT INBOX")
	}
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	plain := heap()
	for _, c := range clients {
		command(c, "c COMPRESS DEFLATE")
	}
	compressed := heap()
	// One compressed NOOP each, from one client compressor reset for every connection (a
	// fresh compressor's blocks are a valid continuation of any DEFLATE stream). The
	// response is read raw, up to the sync flush that ends it.
	deflate, _ := flate.NewWriter(nil, flate.BestSpeed)
	for _, c := range clients {
		deflate.Reset(c.conn)
		io.WriteString(deflate, "d NOOP\r\n")
		if err := deflate.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for !bytes.HasSuffix(got, []byte{0, 0, 0xff, 0xff}) {
			b, err := c.r.ReadByte()
			if err != nil {
				t.Fatalf("compressed NOOP: %v", err)
			}
			got = append(got, b)
		}
	}
	answered := heap()
	perConn := func(h int64) int64 { return (h - plain) / conns }
	t.Logf("an idle connection after COMPRESS holds %d KiB more, %d KiB after a compressed response",
		perConn(compressed)>>10, perConn(answered)>>10)
	if perConn(answered) > 128<<10 {
		t.Errorf("an idle compressed connection holds %d KiB more than a plain one; its compressor was not given back?", perConn(answered)>>10)
	}
}
