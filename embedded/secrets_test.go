package embedded_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/embeddedtest"
	"github.com/strata-mail/strata/internal/testlog"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestNoSecretInLogs runs, with debug logging, good and bad IMAP LOGIN and AUTHENTICATE
// PLAIN, ManageSieve AUTHENTICATE, SetPassword over the admin gRPC API and an LMTP
// delivery, and checks that no password (plain or in its base64 SASL form) and no password
// hash appears anywhere in the log, while the log did record the failures.
func TestNoSecretInLogs(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := embeddedtest.Start(t, embedded.Config{
		Demo:              true,
		ManageSieveListen: "127.0.0.1:0",
		LMTPListen:        "127.0.0.1:0",
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	const (
		newPassword  = "Sekrit-NewPassword-4711"
		badPassword  = "Sekrit-WrongGuess-0815"
		sieveBadPass = "Sekrit-SieveGuess-2222"
	)

	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	md := metadatapb.NewMetadataClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	imapSession(t, srv.IMAPAddr(), []string{
		fmt.Sprintf("a LOGIN %s %s", embedded.DemoAccount, badPassword),
		fmt.Sprintf("b LOGIN %s %s", embedded.DemoAccount, embedded.DemoPassword),
		"c LOGOUT",
	})
	if _, err := md.SetPassword(ctx, &metadatapb.SetPasswordRequest{RequestId: embedded.NewRequestID(), Email: embedded.DemoAccount, Password: newPassword}); err != nil {
		t.Fatal(err)
	}
	imapSession(t, srv.IMAPAddr(), []string{
		"a AUTHENTICATE PLAIN " + plain(embedded.DemoAccount, embedded.DemoPassword), // the old one now
		"b AUTHENTICATE PLAIN " + plain(embedded.DemoAccount, newPassword),
		"c LOGOUT",
	})
	sieveSession(t, srv.ManageSieveAddr(), []string{
		`AUTHENTICATE "PLAIN" "` + plain(embedded.DemoAccount, sieveBadPass) + `"`,
		`AUTHENTICATE "PLAIN" "` + plain(embedded.DemoAccount, newPassword) + `"`,
		"LOGOUT",
	})
	lmtpDeliver(t, srv.LMTPAddr())

	out := logs.String()
	if n := strings.Count(out, `msg="authentication failed"`); n < 3 {
		t.Fatalf("%d failure lines, want 3 (the log did not capture the logins):\n%s", n, out)
	}
	for _, s := range []string{
		newPassword, badPassword, sieveBadPass, "$argon2id$",
		plain(embedded.DemoAccount, embedded.DemoPassword), plain(embedded.DemoAccount, badPassword),
		plain(embedded.DemoAccount, newPassword), plain(embedded.DemoAccount, sieveBadPass),
	} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds the secret %q", s)
		}
	}
	if strings.Contains(strings.ToLower(out), "sekrit") {
		t.Error("the log holds a password")
	}
}

func plain(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// imapSession sends each line after the reply to the one before.
func imapSession(t *testing.T, addr string, lines []string) {
	t.Helper()
	greeted := false
	talk(t, addr, lines, func(line string) bool {
		if !greeted { // "* OK ... ready"
			greeted = true
			return true
		}
		return len(line) > 2 && line[0] != '*' && line[0] != '+'
	})
}

func sieveSession(t *testing.T, addr string, lines []string) {
	t.Helper()
	talk(t, addr, lines, func(line string) bool {
		return strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "NO") || strings.HasPrefix(line, "BYE")
	})
}

// talk reads the greeting up to its last line (done), then sends each line and reads up to
// its final reply line.
func talk(t *testing.T, addr string, lines []string, done func(string) bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	readUntilDone := func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			if done(line) {
				return
			}
		}
	}
	readUntilDone()
	for _, l := range lines {
		fmt.Fprintf(conn, "%s\r\n", l)
		readUntilDone()
	}
}

func lmtpDeliver(t *testing.T, addr string) {
	t.Helper()
	talk(t, addr, []string{
		"LHLO mta.test",
		"MAIL FROM:<sender@example.org>",
		"RCPT TO:<" + embedded.DemoAccount + ">",
		"DATA",
		"Subject: hi\r\n\r\nbody\r\n.",
		"QUIT",
	}, func(line string) bool { return len(line) > 3 && line[3] == ' ' })
}
