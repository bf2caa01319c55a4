package ldapauth_test

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

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/frontend/ldapauth"
	"github.com/strata-mail/strata/internal/testlog"
	"github.com/strata-mail/strata/internal/testwait"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Tenants of the test server: "corp" (example.org) searches then binds over StartTLS and
// maps mail, quota and aliases; "bindco" (bind.test) binds as the user over LDAPS and maps
// the quota only, so its accounts are the login names.
const (
	corpTenant = "corp"
	corpDomain = "example.org"
	bindTenant = "bindco"
	bindDomain = "bind.test"
)

func searchSettings() *metadatapb.LdapSettings {
	return &metadatapb.LdapSettings{
		Url: slapd.ldapURL, CaFile: slapd.caFile, Mode: "search",
		BindDn: ldapServiceDN, BindPasswordFile: slapd.pwFile, BaseDn: "ou=people," + ldapBase,
		Filter:        "(&(objectClass=inetOrgPerson)(uid={user}))",
		MailAttribute: "mail", QuotaAttribute: "mailQuota", AliasAttribute: "mailAlias",
		TimeoutMs: 2000,
	}
}

func bindSettings() *metadatapb.LdapSettings {
	return &metadatapb.LdapSettings{
		Url: slapd.ldapsURL, CaFile: slapd.caFile, Mode: "bind",
		UserDnTemplate: "uid={user},ou=people," + ldapBase, QuotaAttribute: "mailQuota",
		TimeoutMs: 2000,
	}
}

// ldapServer starts an embedded Strata with the two LDAP tenants and a logger that records
// everything it logs (for the test that no secret is logged).
func ldapServer(t testing.TB, edits ...func(*embedded.Config)) (*embedded.Server, *testlog.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &testlog.Buffer{}
	cfg := embedded.Config{
		DataDir:            t.TempDir(),
		IMAPListen:         "127.0.0.1:0",
		GRPCListen:         "127.0.0.1:0",
		LMTPListen:         "127.0.0.1:0",
		ManageSieveListen:  "127.0.0.1:0",
		AllowPlaintextAuth: true,
		MaxMessageSize:     1 << 20,
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	srv, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start embedded server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	md := srv.Metadata()
	for _, tenant := range []struct {
		name, domain string
		settings     *metadatapb.LdapSettings
	}{{corpTenant, corpDomain, searchSettings()}, {bindTenant, bindDomain, bindSettings()}} {
		if _, err := md.CreateTenant(ctx, &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: tenant.name, Domains: []string{tenant.domain}}); err != nil {
			t.Fatal(err)
		}
		setLdap(t, srv, tenant.name, tenant.settings)
	}
	return srv, logs
}

func setLdap(t testing.TB, srv *embedded.Server, tenant string, s *metadatapb.LdapSettings) {
	t.Helper()
	if _, err := srv.Metadata().SetLdapSettings(context.Background(), &metadatapb.SetLdapSettingsRequest{
		RequestId: embedded.NewRequestID(), Tenant: tenant, Settings: s,
	}); err != nil {
		t.Fatalf("set ldap settings of %s: %v", tenant, err)
	}
}

// imapConn is a raw IMAP client on a real socket.
type imapConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialIMAP(t testing.TB, srv *embedded.Server) *imapConn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &imapConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	if greeting := c.line(); !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting %q", greeting)
	}
	return c
}

func (c *imapConn) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns its tagged response line, without the tag.
func (c *imapConn) cmd(command string) string {
	c.t.Helper()
	_, tagged := c.run(command)
	return tagged
}

// run sends a command and returns its untagged responses and tagged response line.
func (c *imapConn) run(command string) (untagged []string, tagged string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, command); err != nil {
		c.t.Fatal(err)
	}
	for {
		l := c.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// login answers LOGIN's tagged response for user and password, both quoted.
func login(t testing.TB, srv *embedded.Server, user, password string) string {
	t.Helper()
	return dialIMAP(t, srv).cmd(fmt.Sprintf("LOGIN %q %q", user, password))
}

func plain(t testing.TB, srv *embedded.Server, user, password string) string {
	t.Helper()
	return dialIMAP(t, srv).cmd("AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
}

func wantPrefix(t testing.TB, what, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Fatalf("%s: got %q, want %q...", what, got, want)
	}
}

const (
	refused       = "NO [AUTHENTICATIONFAILED]"
	wrongPassword = "wrong-pw-7f3a"
)

// TestSearchThenBindLogin: a corp user logs in with LOGIN and AUTHENTICATE PLAIN over a
// real IMAP socket; the account is provisioned at the first login under the directory's
// mail attribute, with the mapped quota and aliases; a wrong password, an unknown user, an
// entry whose address is outside the tenant and a name matching two entries are refused.
func TestSearchThenBindLogin(t *testing.T) {
	srv, _ := ldapServer(t)
	md := srv.Metadata()
	ctx := t.Context()
	if _, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: "alice@example.org"}); err == nil {
		t.Fatal("alice exists before her first login")
	}
	c := dialIMAP(t, srv)
	wantPrefix(t, "LOGIN alice", c.cmd(`LOGIN "alice@example.org" "`+alicePassword+`"`), "OK")
	wantPrefix(t, "SELECT INBOX", c.cmd("SELECT INBOX"), "OK")
	wantPrefix(t, "PLAIN alice", plain(t, srv, "Alice@Example.ORG", alicePassword), "OK")

	acct, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: "alice@example.org"})
	if err != nil || acct.GetTenant() != corpTenant {
		t.Fatalf("provisioned account: %v, %v", acct, err)
	}
	q, err := md.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: "alice@example.org"})
	if err != nil || q.GetRoots()[0].GetLimits().GetStorageBytes() != aliceQuota {
		t.Fatalf("quota from mailQuota: %v, %v", q, err)
	}
	for _, alias := range []string{"alice.smith@example.org", "a@example.org"} {
		r, err := md.ResolveRecipient(ctx, &metadatapb.ResolveRecipientRequest{Address: alias})
		if err != nil || r.GetAccount() != "alice@example.org" || r.GetVia() != "alias" {
			t.Fatalf("alias %s from mailAlias: %v, %v", alias, r, err)
		}
	}

	wantPrefix(t, "wrong password", login(t, srv, "alice@example.org", "wrong"), refused)
	wantPrefix(t, "wrong password (PLAIN)", plain(t, srv, "alice@example.org", "wrong"), refused)
	wantPrefix(t, "empty password", login(t, srv, "alice@example.org", ""), refused)
	wantPrefix(t, "unknown user", login(t, srv, "nobody@example.org", "x"), refused)
	wantPrefix(t, "address outside the tenant", login(t, srv, "carol@example.org", carolPassword), refused)
	wantPrefix(t, "two entries", login(t, srv, "twin@example.org", twinPassword), refused)
	if _, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: "carol@elsewhere.net"}); err == nil {
		t.Fatal("an entry's address outside the tenant was provisioned")
	}
}

// TestBindAsUserLogin: a bindco user logs in by binding as the DN of the template over
// LDAPS; the account is the login name, with the quota read from the user's own entry.
func TestBindAsUserLogin(t *testing.T) {
	srv, _ := ldapServer(t)
	wantPrefix(t, "LOGIN bob", login(t, srv, "bob@bind.test", bobPassword), "OK")
	wantPrefix(t, "PLAIN bob", plain(t, srv, "bob@bind.test", bobPassword), "OK")
	wantPrefix(t, "LOGIN alice", login(t, srv, "alice@bind.test", alicePassword), "OK")
	q, err := srv.Metadata().GetQuota(t.Context(), &metadatapb.GetQuotaRequest{Account: "alice@bind.test"})
	if err != nil || q.GetRoots()[0].GetLimits().GetStorageBytes() != aliceQuota {
		t.Fatalf("quota from mailQuota: %v, %v", q, err)
	}
	wantPrefix(t, "wrong password", login(t, srv, "bob@bind.test", alicePassword), refused)
	wantPrefix(t, "unknown user", login(t, srv, "nobody@bind.test", "x"), refused)
	wantPrefix(t, "empty password", login(t, srv, "bob@bind.test", ""), refused)
	// A DN-special character in the name stays a value (RFC 4514 escaping).
	wantPrefix(t, "DN injection", login(t, srv, "bob,ou=people@bind.test", bobPassword), refused)
	if _, err := srv.Metadata().GetAccount(t.Context(), &metadatapb.GetAccountRequest{Email: "nobody@bind.test"}); err == nil {
		t.Fatal("a refused login provisioned an account")
	}
	// Nothing mapped: the bind alone decides.
	if _, err := srv.Metadata().CreateTenant(t.Context(), &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "bareco", Domains: []string{"bare.test"}}); err != nil {
		t.Fatal(err)
	}
	bare := bindSettings()
	bare.QuotaAttribute = ""
	setLdap(t, srv, "bareco", bare)
	wantPrefix(t, "LOGIN without attributes", login(t, srv, "bob@bare.test", bobPassword), "OK")
	wantPrefix(t, "wrong password without attributes", login(t, srv, "bob@bare.test", alicePassword), refused)
}

// TestLDAPInjection: filter metacharacters in the login name are escaped (RFC 4515 3), so a
// name like "*)(uid=*" or "admin)(|(uid=*" matches no entry and a wildcard cannot stand
// for a user whose password the attacker has, in search mode and in bind mode. The
// brute-force guard is off: it would delay this many refusals from one address past the
// reads (TestLDAPLoginGuarded).
func TestLDAPInjection(t *testing.T) {
	srv, _ := ldapServer(t, func(cfg *embedded.Config) { cfg.AuthGuard.Disabled = true })
	for _, name := range []string{`*`, `*)(uid=*`, `admin)(|(uid=*`, `admin)(|(uid=*))`, `al*`, `*)(|(objectClass=*`, `ali\2a`} {
		for _, password := range []string{alicePassword, adminPassword, "*"} {
			wantPrefix(t, "search "+name, login(t, srv, name+"@"+corpDomain, password), refused)
			wantPrefix(t, "bind "+name, login(t, srv, name+"@"+bindDomain, password), refused)
		}
	}
	// The same passwords work for the real names: the refusals above are the escaping's.
	wantPrefix(t, "admin", login(t, srv, "admin@"+corpDomain, adminPassword), "OK")
	wantPrefix(t, "alice", login(t, srv, "alice@"+corpDomain, alicePassword), "OK")
	if got := ldapauth.FillFilter("(&(objectClass=inetOrgPerson)(uid={user}))", `admin)(|(uid=*`, "x"); got != `(&(objectClass=inetOrgPerson)(uid=admin\29\28|\28uid=\2a))` {
		t.Fatalf("escaped filter: %s", got)
	}
	if got := ldapauth.FillFilter("(mail={email})", "", `a{user}*@x`); got != `(mail=a{user}\2a@x)` {
		t.Fatalf("a placeholder in a value was replaced again: %s", got)
	}
}

// TestDirectoryUnavailable: a directory that is down, that hangs, or whose certificate is
// not from the configured CA answers NO [UNAVAILABLE] within the tenant's timeout, not a
// refusal and not a hang; the other tenants' logins go on.
func TestDirectoryUnavailable(t *testing.T) {
	srv, _ := ldapServer(t)
	down := searchSettings()
	down.Url = fmt.Sprintf("ldap://127.0.0.1:%d", closedPort(t))
	setLdap(t, srv, corpTenant, down)
	wantPrefix(t, "slapd down", login(t, srv, "alice@example.org", alicePassword), "NO [UNAVAILABLE]")

	badCA := bindSettings()
	badCA.CaFile = slapd.otherCA
	setLdap(t, srv, bindTenant, badCA)
	wantPrefix(t, "certificate from another CA", login(t, srv, "bob@bind.test", bobPassword), "NO [UNAVAILABLE]")

	// A tenant of its own: the frontend reuses the settings it read for the others.
	if _, err := srv.Metadata().CreateTenant(t.Context(), &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "hangco", Domains: []string{"hang.test"}}); err != nil {
		t.Fatal(err)
	}
	hung := bindSettings()
	hung.TimeoutMs = 300
	setLdap(t, srv, "hangco", hung)
	pauseSlapd(t)
	start := time.Now()
	wantPrefix(t, "slapd hangs", login(t, srv, "bob@hang.test", bobPassword), "NO [UNAVAILABLE]")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a hung directory held the login %s", took)
	}
	if srv.LDAP().Stats().Unavailable != 3 {
		t.Fatalf("stats: %+v", srv.LDAP().Stats())
	}
}

// TestCacheAndDisabledAccount: a repeated login is confirmed from the credentials cache
// without a bind; a wrong password always binds; an account disabled in Strata is refused
// whether its login is cached or not; a directory that stops answering does not stop a
// cached login.
func TestCacheAndDisabledAccount(t *testing.T) {
	srv, logs := ldapServer(t)
	stats := func(want ldapauth.Stats) {
		t.Helper()
		if got := srv.LDAP().Stats(); got != want {
			t.Fatalf("stats = %+v, want %+v", got, want)
		}
	}
	wantPrefix(t, "first", login(t, srv, "bob@example.org", bobPassword), "OK")
	stats(ldapauth.Stats{Misses: 1})
	wantPrefix(t, "second", login(t, srv, "bob@example.org", bobPassword), "OK")
	wantPrefix(t, "third", plain(t, srv, "BOB@example.org", bobPassword), "OK")
	stats(ldapauth.Stats{Hits: 2, Misses: 1})
	for range 3 {
		wantPrefix(t, "wrong", login(t, srv, "bob@example.org", wrongPassword), refused)
	}
	stats(ldapauth.Stats{Hits: 2, Misses: 4})

	if _, err := srv.Metadata().SetAccountDisabled(t.Context(), &metadatapb.SetAccountDisabledRequest{RequestId: embedded.NewRequestID(), Email: "bob@example.org", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	wantPrefix(t, "disabled, cached", login(t, srv, "bob@example.org", bobPassword), refused)
	srv.AuthCache().Forget("bob@example.org", bobPassword)
	wantPrefix(t, "disabled, uncached", login(t, srv, "bob@example.org", bobPassword), refused)
	if _, err := srv.Metadata().SetAccountDisabled(t.Context(), &metadatapb.SetAccountDisabledRequest{RequestId: embedded.NewRequestID(), Email: "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	wantPrefix(t, "enabled again", login(t, srv, "bob@example.org", bobPassword), "OK")
	pauseSlapd(t)
	wantPrefix(t, "cached while slapd hangs", login(t, srv, "bob@example.org", bobPassword), "OK")

	for _, secret := range []string{bobPassword, ldapServicePw, wrongPassword} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a password is in the log:\n%s", logs.String())
		}
	}
}

// TestLMTPDeliveryToUserWhoNeverLoggedIn: RCPT TO of a corp user without a Strata account
// provisions it from the directory (search mode) and the message is delivered; an address
// the directory does not know is refused with 550.
func TestLMTPDeliveryToUserWhoNeverLoggedIn(t *testing.T) {
	srv, _ := ldapServer(t)
	conn, err := net.Dial("tcp", srv.LMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	reply := func(cmd string) string {
		t.Helper()
		if cmd != "" {
			fmt.Fprintf(conn, "%s\r\n", cmd)
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if len(l) > 3 && l[3] == ' ' {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	wantPrefix(t, "greeting", reply(""), "220")
	wantPrefix(t, "LHLO", reply("LHLO test"), "250")
	wantPrefix(t, "MAIL", reply("MAIL FROM:<sender@remote.test>"), "250")
	wantPrefix(t, "RCPT by alias", reply("RCPT TO:<bobby@example.org>"), "250")
	wantPrefix(t, "RCPT unknown", reply("RCPT TO:<nobody@example.org>"), "550")
	// Bind mode has no credentials to search with: a user who never logged in is unknown.
	wantPrefix(t, "RCPT in bind mode", reply("RCPT TO:<alice@bind.test>"), "550")
	wantPrefix(t, "DATA", reply("DATA"), "354")
	wantPrefix(t, "delivered", reply("Subject: hello\r\n\r\nhi bob\r\n."), "250")
	acct, err := srv.Metadata().GetAccount(t.Context(), &metadatapb.GetAccountRequest{Email: "bob@example.org"})
	if err != nil || acct.GetTenant() != corpTenant {
		t.Fatalf("bob provisioned at RCPT: %v, %v", acct, err)
	}
	c := dialIMAP(t, srv)
	wantPrefix(t, "LOGIN bob", c.cmd(`LOGIN "bob@example.org" "`+bobPassword+`"`), "OK")
	if untagged, got := c.run("STATUS INBOX (MESSAGES)"); !strings.HasPrefix(got, "OK") || len(untagged) != 1 || untagged[0] != "* STATUS INBOX (MESSAGES 1)" {
		t.Fatalf("STATUS: %q %s", untagged, got)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestManageSieveLogin: ManageSieve's AUTHENTICATE PLAIN goes through the same directory:
// OK for the right password, NO for a wrong one, NO (TRYLATER) (RFC 5804 1.3) when the
// directory is down.
func TestManageSieveLogin(t *testing.T) {
	srv, _ := ldapServer(t)
	down := bindSettings()
	down.Url = fmt.Sprintf("ldaps://127.0.0.1:%d", closedPort(t))
	if _, err := srv.Metadata().CreateTenant(t.Context(), &metadatapb.CreateTenantRequest{RequestId: embedded.NewRequestID(), Name: "downco", Domains: []string{"down.test"}}); err != nil {
		t.Fatal(err)
	}
	setLdap(t, srv, "downco", down)
	for _, tc := range []struct{ user, password, want string }{
		{"alice@" + corpDomain, alicePassword, `OK`},
		{"alice@" + corpDomain, wrongPassword, `NO "Authentication failed"`},
		{"alice@down.test", alicePassword, `NO (TRYLATER) "The credential cannot be checked now, try again later"`},
	} {
		conn, err := net.Dial("tcp", srv.ManageSieveAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(conn)
		for { // RFC 5804 1.7: capabilities, then OK
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(l, "OK") {
				break
			}
		}
		fmt.Fprintf(conn, "AUTHENTICATE \"PLAIN\" \"%s\"\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+tc.user+"\x00"+tc.password)))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		wantPrefix(t, tc.user+" over ManageSieve", strings.TrimRight(l, "\r\n"), tc.want)
	}
}

// TestLDAPLoginGuarded: logins of an LDAP tenant go through the metadata leader's
// brute-force guard like Strata passwords: wrong passwords bind and fail until the
// (account, address) pair is locked, then even the right password is refused unchecked,
// without a bind (the directory's own lockout policy never sees the attacker); every
// failure logged the fail2ban line; after the lockout the password works again.
func TestLDAPLoginGuarded(t *testing.T) {
	const lockAfter = 4
	srv, logs := ldapServer(t, func(cfg *embedded.Config) {
		cfg.AuthGuard = metadata.AuthGuardConfig{
			FreeFailures: lockAfter, PairLockoutFailures: lockAfter, PairLockout: 1500 * time.Millisecond,
			IPLockoutFailures: 100, FailureWindow: time.Minute,
		}
	})
	for i := range lockAfter {
		wantPrefix(t, fmt.Sprintf("wrong password %d", i+1), login(t, srv, "alice@"+corpDomain, wrongPassword), refused)
	}
	binds := srv.LDAP().Stats().Misses
	wantPrefix(t, "right password from the locked pair", login(t, srv, "alice@"+corpDomain, alicePassword), "NO [UNAVAILABLE]")
	if got := srv.LDAP().Stats().Misses; got != binds {
		t.Errorf("a locked-out login reached the directory (%d checks, then %d)", binds, got)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="authentication failed" client_ip=127.0.0.1 protocol=imap account=alice@example.org`) {
			lines++
		}
	}
	if lines != lockAfter+1 {
		t.Errorf("%d failure lines, want %d:\n%s", lines, lockAfter+1, logs.String())
	}
	time.Sleep(1500 * time.Millisecond)
	wantPrefix(t, "right password after the lockout", login(t, srv, "alice@"+corpDomain, alicePassword), "OK")
}

// TestConnectionPool: with the credentials cache off, every login binds to the directory,
// over one pooled connection: sequential logins of different users and a wrong password
// (the directory's refusal leaves the connection healthy) open one connection in all, and
// each user still gets his own answer (every exchange starts with a bind). New settings
// for the tenant empty its pool.
func TestConnectionPool(t *testing.T) {
	srv, _ := ldapServer(t, func(cfg *embedded.Config) {
		cfg.AuthCacheTTL = -1
		cfg.AuthGuard.Disabled = true
		cfg.IMAPLimits.MaxConnectionsPerAccount = 1000 // the logins' sessions stay open
	})
	before := srv.LDAP().Dials()
	for range 3 {
		wantPrefix(t, "alice", login(t, srv, "alice@"+corpDomain, alicePassword), "OK")
		wantPrefix(t, "alice, wrong password", login(t, srv, "alice@"+corpDomain, wrongPassword), refused)
		wantPrefix(t, "admin", login(t, srv, "admin@"+corpDomain, adminPassword), "OK")
		wantPrefix(t, "admin with alice's password", login(t, srv, "admin@"+corpDomain, alicePassword), refused)
	}
	if got := srv.LDAP().Dials() - before; got != 1 {
		t.Errorf("12 sequential logins of one tenant opened %d directory connections, want 1", got)
	}
	changed := searchSettings()
	changed.TimeoutMs = 3000
	setLdap(t, srv, corpTenant, changed)
	testwait.Until(t, 30*time.Second, func() error {
		if got := srv.LDAP().Dials() - before; got < 2 {
			wantPrefix(t, "alice after new settings", login(t, srv, "alice@"+corpDomain, alicePassword), "OK")
			time.Sleep(100 * time.Millisecond) // the settings are read again within their TTL (10 s)
			return fmt.Errorf("%d connections after the settings changed, want a new one", got)
		}
		return nil
	})
}
