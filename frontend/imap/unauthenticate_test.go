package imap_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestUnauthenticate: nothing of the first account's session survives UNAUTHENTICATE into
// the second's (RFC 8437 3, 4.1).
func TestUnauthenticate(t *testing.T) {
	srv := startTenants(t)
	rc := loginRawAs(t, srv, alice)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " UNAUTHENTICATE") {
		t.Fatalf("CAPABILITY after login lacks UNAUTHENTICATE: %q", caps)
	}
	msg := testMessage("alice's", "private")
	rc.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))
	rc.ok("ENABLE IMAP4rev2 CONDSTORE UIDONLY")
	rc.ok("SELECT INBOX")
	rc.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
	rc.ok("UID SEARCH RETURN (SAVE) ALL")

	untagged, tagged := rc.cmd("UNAUTHENTICATE")
	if len(untagged) != 0 {
		t.Errorf("UNAUTHENTICATE sent %q (RFC 8437 3: no expunge event)", untagged)
	}
	if !strings.HasPrefix(tagged, "OK [CAPABILITY ") || !strings.Contains(tagged, " AUTH=PLAIN") ||
		strings.Contains(tagged, "UNAUTHENTICATE") || strings.Contains(tagged, "COMPRESS") {
		t.Fatalf("UNAUTHENTICATE: %q, want OK with the capabilities of the not authenticated state", tagged)
	}
	rc.expect("SELECT INBOX", "BAD")
	rc.expect("NAMESPACE", "BAD")
	rc.expect("UNAUTHENTICATE", "BAD")
	rc.ok("NOOP")

	// alice's mailbox changes; bob, logged in on the same connection, hears nothing of it.
	appendMessage(t, login(t, srv), "INBOX", testMessage("to demo", "x"))
	other := loginRawAs(t, srv, alice)
	other.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg))

	rc.ok("LOGIN " + bob + " " + testPassword)
	if untagged := rc.ok("NOOP"); len(untagged) != 0 {
		t.Fatalf("bob's NOOP after alice's UNAUTHENTICATE: %q", untagged)
	}
	// ENABLE starts afresh: IMAP4rev2 and CONDSTORE are newly enabled (RFC 8437 4.1).
	if untagged := rc.ok("ENABLE IMAP4rev2"); !contains(untagged, "ENABLED IMAP4rev2") {
		t.Fatalf("ENABLE after UNAUTHENTICATE: %q", untagged)
	}
	bobs := testMessage("bob's", "own")
	rc.ok(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(bobs), bobs))
	untagged = rc.ok("SELECT INBOX")
	if !contains(untagged, "* 1 EXISTS") || contains(untagged, "HIGHESTMODSEQ") {
		t.Fatalf("bob's SELECT INBOX: %q (one message, and no CONDSTORE until bob enables it)", untagged)
	}
	if untagged := rc.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); !contains(untagged, "bob's") ||
		contains(untagged, "MODSEQ") || contains(untagged, "alice") {
		t.Fatalf("bob's FETCH: %q", untagged)
	}
	// UIDONLY (RFC 9586) is off again: message numbers are accepted.
	if untagged := rc.ok("FETCH $ (UID)"); len(untagged) != 0 { // RFC 5182: no saved result
		t.Fatalf("FETCH $ in bob's session: %q", untagged)
	}

	// alice's INBOX was left without expunging its \Deleted message.
	if untagged := other.ok("STATUS INBOX (MESSAGES DELETED)"); !contains(untagged, "(MESSAGES 2 DELETED 1)") {
		t.Fatalf("alice's INBOX after UNAUTHENTICATE: %q", untagged)
	}

	// The account re-check (quota.go) follows bob, not alice.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := srv.Metadata().SetAccountDisabled(ctx, &metadatapb.SetAccountDisabledRequest{
		RequestId: embedded.NewRequestID(), Email: alice, Disabled: true,
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past accountCheckInterval
	rc.ok("NOOP")
	rc.ok("LOGOUT")
}

// TestUnauthenticateKeepsTLS: TLS is not reset (RFC 8437 3), so LOGIN works again without
// STARTTLS, which is not offered.
func TestUnauthenticateKeepsTLS(t *testing.T) {
	srv := startTLSServer(t)
	rc := dialRaw(t, srv)
	rc.ok("STARTTLS")
	rc.handshake(srv)
	rc.ok("LOGIN demo@example.com demo")
	_, tagged := rc.cmd("UNAUTHENTICATE")
	if !strings.HasPrefix(tagged, "OK") || strings.Contains(tagged, "STARTTLS") || strings.Contains(tagged, "LOGINDISABLED") {
		t.Fatalf("UNAUTHENTICATE over TLS: %q", tagged)
	}
	rc.expect("STARTTLS", "BAD [CLIENTBUG]")
	rc.ok("LOGIN demo@example.com demo")
	rc.ok("SELECT INBOX")
}

// TestUnauthenticateEndsCompression: both directions are plain again after the OK (RFC
// 8437 4.1); a later COMPRESS starts a new compression.
func TestUnauthenticateEndsCompression(t *testing.T) {
	srv := startServer(t)
	rc := loginRaw(t, srv)
	z := rc.compress()
	rc.ok("SELECT INBOX")
	rc.ok("UNAUTHENTICATE")
	rc.uncompress(z)
	rc.ok("LOGIN demo@example.com demo")
	rc.compress()
	rc.ok("SELECT INBOX")

	// RFC 8437 3 lets the client send the next command without waiting: a compressed
	// UNAUTHENTICATE and a plain LOGIN in one write.
	rc = loginRaw(t, srv)
	z = rc.compress()
	rc.deflated.Reset()
	io.WriteString(rc.deflate, "u1 UNAUTHENTICATE\r\n")
	rc.deflate.Flush()
	rc.deflated.WriteString("u2 LOGIN demo@example.com demo\r\n")
	if _, err := rc.conn.Write(rc.deflated.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, tagged := rc.until("u1"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("UNAUTHENTICATE: %s", tagged)
	}
	rc.uncompress(z)
	if _, tagged := rc.until("u2"); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("LOGIN sent with UNAUTHENTICATE: %s", tagged)
	}
	rc.ok("NOOP")
}

// uncompress ends the client side of compression after UNAUTHENTICATE: the server's data
// ends with a final block, what follows is plain.
func (rc *rawConn) uncompress(z *compression) {
	rc.t.Helper()
	if n := rc.r.Buffered(); n != 0 {
		rc.t.Fatalf("%d decompressed bytes after the UNAUTHENTICATE response", n)
	}
	if rest, err := io.ReadAll(z.inflate); err != nil || len(rest) != 0 {
		rc.t.Fatalf("compressed data after the UNAUTHENTICATE response: %q, %v", rest, err)
	}
	rc.r, rc.deflate = z.below, nil
}

func TestUnauthenticateDisabled(t *testing.T) {
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.DisableUnauthenticate = true })
	rc := loginRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); contains(caps, "UNAUTHENTICATE") {
		t.Fatalf("CAPABILITY offers UNAUTHENTICATE although it is disabled: %q", caps)
	}
	rc.expect("UNAUTHENTICATE", "BAD")
	rc.ok("SELECT INBOX")
}
