package imap_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/internal/scram"
)

// scramAuth runs AUTHENTICATE mechanism with client over rc, the client-first-message as
// an initial response (RFC 4959) or, without ir, after the server's empty challenge. It
// returns the tagged response and the client-final-message it sent ("" when the server
// ended sooner). A server-final-message is verified and answered with an empty line.
func (rc *rawConn) scramAuth(mechanism string, client *scram.Client, ir bool) (tagged, final string) {
	rc.t.Helper()
	rc.n++
	tag := "s" + string(rune('a'+rc.n%26))
	first := base64.StdEncoding.EncodeToString(client.First())
	if ir {
		rc.write(tag + " AUTHENTICATE " + mechanism + " " + first + "\r\n")
	} else {
		rc.write(tag + " AUTHENTICATE " + mechanism + "\r\n")
		if l := rc.readLine(); l != "+ " {
			rc.t.Fatalf("AUTHENTICATE without an initial response: %q, want an empty challenge", l)
		}
		rc.write(first + "\r\n")
	}
	for step := 0; ; step++ {
		l := rc.readLine()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return rest, final
		}
		challenge, ok := strings.CutPrefix(l, "+ ")
		if !ok {
			rc.t.Fatalf("AUTHENTICATE %s: unexpected %q", mechanism, l)
		}
		msg, err := base64.StdEncoding.DecodeString(challenge)
		if err != nil {
			rc.t.Fatalf("challenge %q: %v", challenge, err)
		}
		switch step {
		case 0:
			out, err := client.Final(msg)
			if err != nil {
				rc.t.Fatalf("server-first-message %q: %v", msg, err)
			}
			final = string(out)
			rc.write(base64.StdEncoding.EncodeToString(out) + "\r\n")
		case 1:
			if err := client.Verify(msg); err != nil {
				rc.t.Fatalf("server-final-message %q: %v", msg, err)
			}
			rc.write("\r\n") // RFC 4422 3.6: an empty response to additional data
		default:
			rc.t.Fatalf("a third challenge %q", l)
		}
	}
}

// sendFirst sends AUTHENTICATE with the client-first-message and returns the decoded
// server-first-message.
func (rc *rawConn) sendFirst(tag, mechanism string, first []byte) string {
	rc.t.Helper()
	rc.write(tag + " AUTHENTICATE " + mechanism + " " + base64.StdEncoding.EncodeToString(first) + "\r\n")
	l := rc.readLine()
	challenge, ok := strings.CutPrefix(l, "+ ")
	if !ok {
		rc.t.Fatalf("client-first-message answered %q", l)
	}
	msg, err := base64.StdEncoding.DecodeString(challenge)
	if err != nil {
		rc.t.Fatal(err)
	}
	return string(msg)
}

func demoClient() *scram.Client {
	return &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: embedded.DemoPassword}
}

// TestAuthenticateScram: RFC 7677 SCRAM-SHA-256 over a real socket, with and without an
// initial response, a case-folded user name, then every refusal the exchange has. The
// brute-force guard is off: its delays would outlast the reads of this many refusals from
// one address (TestEveryMechanismIsGuarded tests SCRAM under the guard).
func TestAuthenticateScram(t *testing.T) {
	srv := startServerWith(t, noGuard)
	rc := dialRaw(t, srv)
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " AUTH=SCRAM-SHA-256 ") || contains(caps, "AUTH=SCRAM-SHA-256-PLUS") || contains(caps, "SCRAM-SHA-1") {
		t.Fatalf("CAPABILITY without TLS: %q", caps)
	}
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", demoClient(), true); !strings.HasPrefix(tagged, "OK [CAPABILITY ") {
		t.Fatalf("SCRAM-SHA-256 with the demo password: %q", tagged)
	}
	rc.ok("SELECT INBOX")

	rc = dialRaw(t, srv)
	upper := demoClient()
	upper.Username = "DEMO@example.com"
	if tagged, _ := rc.scramAuth("scram-sha-256", upper, false); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SCRAM-SHA-256 without an initial response: %q", tagged)
	}

	// A wrong password: the proof does not verify.
	rc = dialRaw(t, srv)
	wrong := demoClient()
	wrong.Password = "wrong"
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", wrong, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %q", tagged)
	}
	// An unknown account runs the same exchange, with a salt that stays the same for the
	// name, and fails at the proof.
	nobody := &scram.Client{Hash: scram.SHA256, Username: "nobody@example.com", Password: "x"}
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", nobody, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("unknown account: %q", tagged)
	}
	salt := func(serverFirst string) string { return strings.Split(serverFirst, ",")[1] }
	s1 := rc.sendFirst("u1", "SCRAM-SHA-256", (&scram.Client{Hash: scram.SHA256, Username: "nobody@example.com"}).First())
	rc.write("*\r\n")
	rc.until("u1")
	s2 := rc.sendFirst("u2", "SCRAM-SHA-256", (&scram.Client{Hash: scram.SHA256, Username: "nobody@example.com"}).First())
	rc.write("*\r\n")
	if _, tagged := rc.until("u2"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("cancel: %q", tagged)
	}
	if salt(s1) != salt(s2) || !strings.Contains(s1, ",i=65536") {
		t.Fatalf("made-up credentials of one name differ or look unlike real ones: %q, %q", s1, s2)
	}

	// RFC 5802 5.1 r=: a client-final-message must carry this exchange's nonce. A replay of
	// a whole successful exchange (same client nonce) meets a new server nonce.
	rc = dialRaw(t, srv)
	first := demoClient()
	first.Nonce = "fixed-client-nonce"
	tagged, final := rc.scramAuth("SCRAM-SHA-256", first, true)
	if !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("exchange to replay: %q", tagged)
	}
	rc = dialRaw(t, srv)
	serverFirst := rc.sendFirst("r1", "SCRAM-SHA-256", []byte("n,,n="+embedded.DemoAccount+",r=fixed-client-nonce"))
	if strings.Contains(final, serverFirst[2:strings.IndexByte(serverFirst, ',')]) {
		t.Fatalf("the server reused a nonce: %q", serverFirst)
	}
	rc.write(base64.StdEncoding.EncodeToString([]byte(final)) + "\r\n")
	if _, tagged := rc.until("r1"); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("replayed client-final-message: %q", tagged)
	}
	// A nonce changed by the client, with a proof computed over it, is refused too.
	serverFirst = rc.sendFirst("r2", "SCRAM-SHA-256", []byte("n,,n="+embedded.DemoAccount+",r=abc"))
	forged := &scram.Client{Hash: scram.SHA256, Username: embedded.DemoAccount, Password: embedded.DemoPassword, Nonce: "abcd"}
	forged.First()
	out, err := forged.Final([]byte(strings.Replace(serverFirst, "r=abc", "r=abcd", 1)))
	if err != nil {
		t.Fatal(err)
	}
	rc.write(base64.StdEncoding.EncodeToString(out) + "\r\n")
	if _, tagged := rc.until("r2"); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("changed nonce: %q", tagged)
	}

	// Channel binding rules without TLS (RFC 5802 6).
	for _, tc := range []struct{ mech, gs2, want string }{
		{"SCRAM-SHA-256", "p=tls-exporter,,", "NO [AUTHENTICATIONFAILED]"}, // binding with a non-PLUS mechanism
		{"SCRAM-SHA-256", "p=tls-unique,,", "NO [AUTHENTICATIONFAILED]"},   // a binding type Strata lacks
		{"SCRAM-SHA-256", "y,,", "OK"},                                     // no -PLUS offered here: no downgrade
		{"SCRAM-SHA-256-PLUS", "p=tls-exporter,,", "NO [CANNOT]"},          // -PLUS is not offered without TLS
		{"SCRAM-SHA-256", "n,a=other@example.com,", "NO [AUTHORIZATIONFAILED]"},
	} {
		rc = dialRaw(t, srv)
		c := demoClient()
		c.GS2Header = tc.gs2
		if tagged, _ := rc.scramAuth(tc.mech, c, true); !strings.HasPrefix(tagged, tc.want) {
			t.Errorf("%s with %q: %q, want %s", tc.mech, tc.gs2, tagged, tc.want)
		}
	}

	// Malformed messages are BAD.
	rc = dialRaw(t, srv)
	for _, msg := range []string{"", "x,,n=a,r=b", "n,,r=b,n=a", "n,,n=a=2X,r=b", "n,,n=a,r=b c", "n,,n=a"} {
		rc.expect("AUTHENTICATE SCRAM-SHA-256 "+base64.StdEncoding.EncodeToString([]byte(msg)), "BAD")
	}
	rc.sendFirst("m1", "SCRAM-SHA-256", demoClient().First())
	rc.write(base64.StdEncoding.EncodeToString([]byte("c=biws,r=x")) + "\r\n") // no proof
	if _, tagged := rc.until("m1"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("client-final-message without a proof: %q", tagged)
	}
	rc.sendFirst("m2", "SCRAM-SHA-256", demoClient().First())
	rc.write(base64.StdEncoding.EncodeToString([]byte("c=biws,r=x,p=AAAA")) + "\r\n")
	if _, tagged := rc.until("m2"); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("client-final-message with another nonce: %q", tagged)
	}
	// RFC 5802 5.1 m=: an unknown mandatory extension fails the exchange.
	rc.expect("AUTHENTICATE SCRAM-SHA-256 "+base64.StdEncoding.EncodeToString([]byte("n,,m=ext,n=a,r=b")), "NO [AUTHENTICATIONFAILED]")
}

// dialTLS connects with TLS to addr, verifying srv's certificate, and reads the greeting.
func dialTLS(t *testing.T, srv *embedded.Server, addr string) (*rawConn, *tls.Conn) {
	t.Helper()
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: certPool(t, srv), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { tc.Close() })
	rc := &rawConn{t: t, conn: tc, r: bufio.NewReader(tc)}
	if greeting := rc.readLine(); !strings.HasPrefix(greeting, "* OK ") {
		t.Fatalf("greeting %q", greeting)
	}
	return rc, tc
}

// exporter is the tls-exporter channel binding of a TLS connection (RFC 9266 2).
func exporter(t *testing.T, tc *tls.Conn) []byte {
	t.Helper()
	state := tc.ConnectionState()
	data, err := state.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAuthenticateScramPlus: SCRAM-SHA-256-PLUS with tls-exporter channel binding (RFC
// 9266) over IMAPS and after STARTTLS; a client that claims no binding while the server
// offers it (a downgrade, RFC 5802 6) and a -PLUS exchange without binding data are refused.
func TestAuthenticateScramPlus(t *testing.T) {
	srv := startTLSServer(t)
	rc, tc := dialTLS(t, srv, srv.IMAPSAddr())
	caps := rc.ok("CAPABILITY")
	if !contains(caps, " AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 AUTH=PLAIN") {
		t.Fatalf("CAPABILITY over TLS: %q", caps)
	}
	plus := demoClient()
	plus.GS2Header, plus.ChannelBinding = "p=tls-exporter,,", exporter(t, tc)
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256-PLUS", plus, true); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SCRAM-SHA-256-PLUS: %q", tagged)
	}
	rc.ok("SELECT INBOX")

	// After STARTTLS: the binding is of the TLS session STARTTLS began.
	rc = dialRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); contains(caps, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("-PLUS offered before STARTTLS: %q", caps)
	}
	rc.ok("STARTTLS")
	rc.handshake(srv)
	plus = demoClient()
	plus.GS2Header, plus.ChannelBinding = "p=tls-exporter,,", exporter(t, rc.conn.(*tls.Conn))
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256-PLUS", plus, false); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SCRAM-SHA-256-PLUS after STARTTLS: %q", tagged)
	}

	for _, tc2 := range []struct{ mech, gs2 string }{
		{"SCRAM-SHA-256", "y,,"},                 // downgrade: the server offers -PLUS here
		{"SCRAM-SHA-256-PLUS", "n,,"},            // -PLUS without binding
		{"SCRAM-SHA-256-PLUS", "y,,"},            // -PLUS without binding
		{"SCRAM-SHA-256-PLUS", "p=tls-unique,,"}, // another binding type
	} {
		rc, _ := dialTLS(t, srv, srv.IMAPSAddr())
		c := demoClient()
		c.GS2Header = tc2.gs2
		if tagged, _ := rc.scramAuth(tc2.mech, c, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
			t.Errorf("%s with %q over TLS: %q", tc2.mech, tc2.gs2, tagged)
		}
	}
	// Binding data of the right length but not this session's.
	rc, _ = dialTLS(t, srv, srv.IMAPSAddr())
	plus = demoClient()
	plus.GS2Header, plus.ChannelBinding = "p=tls-exporter,,", make([]byte, 32)
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256-PLUS", plus, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong binding data: %q", tagged)
	}
}

// TestScramPlusDefeatsMITM: a man in the middle terminates the client's TLS with another
// certificate (which this client was made to trust) and opens its own TLS session to the
// server, relaying the bytes between them. Each end computes tls-exporter on its own TLS
// session; they differ, so SCRAM-SHA-256-PLUS fails, while SCRAM-SHA-256 without binding,
// which cannot see the relay, succeeds through it.
func TestScramPlusDefeatsMITM(t *testing.T) {
	srv := startTLSServer(t)
	mitmCert := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{mitmCert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				upstream, err := tls.Dial("tcp", srv.IMAPSAddr(), &tls.Config{RootCAs: certPool(t, srv), ServerName: "localhost"})
				if err != nil {
					return
				}
				defer upstream.Close()
				go io.Copy(upstream, client)
				io.Copy(client, upstream)
			}()
		}
	}()
	dialMITM := func() (*rawConn, *tls.Conn) {
		pool := x509.NewCertPool()
		pool.AddCert(mitmCert.Leaf)
		tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		rc := &rawConn{t: t, conn: tc, r: bufio.NewReader(tc)}
		if greeting := rc.readLine(); !strings.HasPrefix(greeting, "* OK ") {
			t.Fatalf("greeting through the relay %q", greeting)
		}
		return rc, tc
	}

	rc, tc := dialMITM()
	plus := demoClient()
	plus.GS2Header, plus.ChannelBinding = "p=tls-exporter,,", exporter(t, tc)
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256-PLUS", plus, true); !strings.HasPrefix(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("SCRAM-SHA-256-PLUS through a man in the middle: %q", tagged)
	}
	rc, _ = dialMITM()
	if tagged, _ := rc.scramAuth("SCRAM-SHA-256", demoClient(), true); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SCRAM-SHA-256 without binding through the relay: %q", tagged)
	}
}

// selfSigned makes a certificate for localhost that no one else trusts (testCert).
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	leaf, key := testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mitm"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil, nil)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// TestAuthenticateScramSHA1: SCRAM-SHA-1 (RFC 5802) only when configured: the metadata
// service then derives its keys at each password change and IMAP offers it.
func TestAuthenticateScramSHA1(t *testing.T) {
	if caps := dialRaw(t, startServer(t)).ok("CAPABILITY"); contains(caps, "SCRAM-SHA-1") {
		t.Fatalf("SCRAM-SHA-1 offered by default: %q", caps)
	}
	srv := startServerWith(t, func(cfg *embedded.Config) { cfg.Scram.SHA1 = true })
	rc := dialRaw(t, srv)
	if caps := rc.ok("CAPABILITY"); !contains(caps, " AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-1 AUTH=PLAIN") {
		t.Fatalf("CAPABILITY with SCRAM-SHA-1 on: %q", caps)
	}
	c := &scram.Client{Hash: scram.SHA1, Username: embedded.DemoAccount, Password: embedded.DemoPassword}
	if tagged, _ := rc.scramAuth("SCRAM-SHA-1", c, true); !strings.HasPrefix(tagged, "OK") {
		t.Fatalf("SCRAM-SHA-1: %q", tagged)
	}
}
