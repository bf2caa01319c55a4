package lmtp_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
)

// lockedBuffer collects the server's log across connections.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

// FuzzSession sends arbitrary bytes as a whole LMTP session to a real server: it must
// answer, never panic (go-smtp would recover and log it), and keep serving.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"LHLO a\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n",
		"LHLO a\r\nMAIL FROM:<a@example.org> BODY=BINARYMIME SIZE=10\r\nRCPT TO:<demo+x@example.com>\r\nBDAT 5 LAST\r\nab\x00cd",
		"LHLO a\r\nMAIL FROM:<> SMTPUTF8\r\nRCPT TO:<dé@example.com>\r\nRCPT TO:<demo@example.com> NOTIFY=NEVER\r\nRSET\r\n",
		"LHLO a\r\nMAIL FROM:<a@b> BODY=7BIT\r\nRCPT TO:<demo@example.com>\r\nDATA\r\n\xff\xfe\r\n.\r\n",
		"LHLO [127.0.0.1]\r\nBDAT 99999999999\r\nDATA x\r\nMAIL FROM:<@route:a@b>\r\nRCPT TO:<postmaster>\r\n",
		"EHLO a\r\nHELO a\r\nAUTH PLAIN\r\nSTARTTLS\r\nVRFY x\r\n\r\n \r\n",
		"LHLO a\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@example.com>\r\nDATA\r\nX-Spam-Flag: YES\r\nX-Spamd-Result: default: True [1e999 / 1]\r\n\r\n.\r\n",
	} {
		f.Add([]byte(seed))
	}
	var log lockedBuffer
	srv := startServer(f, func(cfg *embedded.Config) {
		cfg.MaxMessageSize = 64 << 10
		cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	f.Fuzz(func(t *testing.T, session []byte) {
		conn, err := net.Dial("tcp", srv.LMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(session)
		conn.(*net.TCPConn).CloseWrite()
		// The server closes once it reads the end of input; the deadline only bounds a
		// session the input left waiting (a BDAT chunk longer than the input).
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, _ := io.ReadAll(conn)
		if !bytes.HasPrefix(reply, []byte("220 ")) {
			t.Fatalf("no greeting: %q", reply)
		}
		if log.contains("panic") {
			t.Fatalf("server panicked on %q:\n%s", session, log.buf.String())
		}
	})
}
