package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// DefaultTimeout bounds each exchange with a directory whose settings name none.
const DefaultTimeout = 5 * time.Second

// Modes of LdapSettings.mode.
const (
	modeBind   = "bind"
	modeSearch = "search"
)

// errServiceAccount is a search-mode directory that refused the service account: a
// configuration fault, answered as the directory being unavailable (the user can do
// nothing about it) and logged.
var errServiceAccount = errors.New("the directory refused the service account's bind")

// entry is what a successful check learned of the user.
type entry struct {
	dn      string
	mail    string   // the mail attribute's first value; "" when not mapped or absent
	quota   string   // the quota attribute's first value; "" when not mapped or absent
	aliases []string // the alias attribute's values
}

// session is one connection to a tenant's directory. Every exchange on it starts with a
// bind (verify, lookup), so a session is reused for another user as it is (Source's pool).
type session struct {
	settings *metadatapb.LdapSettings
	raw      net.Conn // the TCP connection, for the deadlines of each use
	conn     *ldap.Conn
	timeout  time.Duration
	stop     func() bool
	idle     time.Time // when it went back to the pool
}

// open connects to the directory of settings and secures the connection: TLS from the
// first byte (ldaps://) or StartTLS (ldap://) before anything else is sent, unless the
// settings allow plaintext to a loopback host. The connection's deadline is the tenant's
// timeout or ctx's deadline, whichever is first, and ctx's end closes it.
func open(ctx context.Context, s *metadatapb.LdapSettings) (*session, error) {
	u, err := url.Parse(s.GetUrl())
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: ldap url %q not usable", auth.ErrDirectoryUnavailable, s.GetUrl())
	}
	timeout := DefaultTimeout
	if ms := s.GetTimeoutMs(); ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ldap": "389", "ldaps": "636"}[u.Scheme]
	}
	tlsConfig, err := clientTLS(s.GetCaFile(), u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", auth.ErrDirectoryUnavailable, err)
	}
	dialer := net.Dialer{Deadline: deadline}
	raw, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", auth.ErrDirectoryUnavailable, err)
	}
	// The hard deadline of the whole exchange: TLS handshakes, binds and searches alike.
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: %v", auth.ErrDirectoryUnavailable, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*session, error) {
		stop()
		raw.Close()
		return nil, fmt.Errorf("%w: %v", auth.ErrDirectoryUnavailable, err)
	}
	var netConn net.Conn = raw
	if u.Scheme == "ldaps" {
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("ldaps handshake with %s: %w", u.Host, err))
		}
		netConn = tc
	}
	conn := ldap.NewConn(netConn, u.Scheme == "ldaps")
	conn.Start()
	conn.SetTimeout(time.Until(deadline))
	if u.Scheme == "ldap" && !(s.GetAllowPlaintext() && loopback(u.Hostname())) {
		// RFC 4513 3: StartTLS before the bind, so the password travels encrypted.
		if err := conn.StartTLS(tlsConfig); err != nil {
			conn.Close()
			return fail(fmt.Errorf("StartTLS with %s: %w", u.Host, err))
		}
	}
	return &session{settings: s, raw: raw, conn: conn, timeout: timeout, stop: stop}, nil
}

// deadline is the end of one use of the session: the tenant's timeout from now, or ctx's
// deadline if sooner.
func (ss *session) deadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(ss.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// rearm readies a pooled session for a use under ctx, as open does a new one: the hard
// deadline of the exchange, ctx's end closing it.
func (ss *session) rearm(ctx context.Context) error {
	deadline := ss.deadline(ctx)
	if err := ss.raw.SetDeadline(deadline); err != nil {
		return err
	}
	ss.conn.SetTimeout(time.Until(deadline))
	raw := ss.raw
	ss.stop = context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// park ends a use that left the session healthy: no deadline while it waits in the pool,
// where a read error (the directory closing it) marks it closing for the next acquire.
func (ss *session) park() bool {
	if !ss.stop() {
		return false // ctx ended: its deadline may have cut an exchange short
	}
	ss.idle = time.Now()
	return ss.raw.SetDeadline(time.Time{}) == nil
}

func (ss *session) close() {
	ss.stop()
	ss.conn.Close()
}

// clientTLS verifies the directory's certificate against caFile (PEM) or the system roots.
func clientTLS(caFile, host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ldap ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ldap ca file %s: no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fill replaces {user} and {email} in a template in one pass with the escaped local part
// and login name; a replaced value is never scanned again.
func fill(template, local, email string, escape func(string) string) string {
	return strings.NewReplacer("{user}", escape(local), "{email}", escape(email)).Replace(template)
}

// attributes are the mapped attributes a check reads.
func (ss *session) attributes() []string {
	var attrs []string
	for _, a := range []string{ss.settings.GetMailAttribute(), ss.settings.GetQuotaAttribute(), ss.settings.GetAliasAttribute()} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	if len(attrs) == 0 {
		// RFC 4511 4.5.1.8: "1.1" asks for no attributes.
		attrs = []string{"1.1"}
	}
	return attrs
}

// verify checks the user's password with a bind and returns the user's entry. local is
// the login's local part, email the whole login (lower case).
func (ss *session) verify(local, email, password string) (*entry, error) {
	if password == "" {
		return nil, auth.ErrInvalidCredentials // RFC 4513 5.1.2: not an unauthenticated bind
	}
	switch ss.settings.GetMode() {
	case modeBind:
		dn := fill(ss.settings.GetUserDnTemplate(), local, email, ldap.EscapeDN)
		if err := ss.conn.Bind(dn, password); err != nil {
			return nil, bindError(err)
		}
		if ss.attributes()[0] == "1.1" {
			return &entry{dn: dn}, nil // nothing mapped: nothing to read
		}
		// The user's own entry, read with the user's rights.
		return ss.readEntry(dn, "(objectClass=*)", ldap.ScopeBaseObject)
	case modeSearch:
		if err := ss.bindService(); err != nil {
			return nil, err
		}
		filter := fill(ss.settings.GetFilter(), local, email, ldap.EscapeFilter)
		e, err := ss.readEntry(ss.settings.GetBaseDn(), filter, ldap.ScopeWholeSubtree)
		if err != nil {
			return nil, err
		}
		if err := ss.conn.Bind(e.dn, password); err != nil {
			return nil, bindError(err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("%w: ldap mode %q", auth.ErrDirectoryUnavailable, ss.settings.GetMode())
}

// lookup finds the entry whose mail or alias attribute is address, with the service
// account (search mode only): LMTP's resolution of a user who never logged in. Found
// false when none or more than one matches.
func (ss *session) lookup(address string) (*entry, bool, error) {
	if err := ss.bindService(); err != nil {
		return nil, false, err
	}
	var terms []string
	for _, a := range []string{ss.settings.GetMailAttribute(), ss.settings.GetAliasAttribute()} {
		if a != "" {
			terms = append(terms, "("+a+"="+ldap.EscapeFilter(address)+")")
		}
	}
	if len(terms) == 0 {
		return nil, false, nil
	}
	filter := "(|" + strings.Join(terms, "") + ")"
	e, err := ss.readEntry(ss.settings.GetBaseDn(), filter, ldap.ScopeWholeSubtree)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return nil, false, nil
	}
	return e, err == nil, err
}

// bindService binds as the search mode's service account, its password read from the file
// on this host (trailing line ends dropped).
func (ss *session) bindService() error {
	raw, err := os.ReadFile(ss.settings.GetBindPasswordFile())
	if err != nil {
		return fmt.Errorf("%w: ldap bind password file: %v", auth.ErrDirectoryUnavailable, err)
	}
	password := strings.TrimRight(string(raw), "\r\n")
	if password == "" {
		return fmt.Errorf("%w: ldap bind password file %s is empty", auth.ErrDirectoryUnavailable, ss.settings.GetBindPasswordFile())
	}
	if err := ss.conn.Bind(ss.settings.GetBindDn(), password); err != nil {
		if errors.Is(bindError(err), auth.ErrInvalidCredentials) {
			return fmt.Errorf("%w: %w as %s", auth.ErrDirectoryUnavailable, errServiceAccount, ss.settings.GetBindDn())
		}
		return bindError(err)
	}
	return nil
}

// readEntry searches for exactly one entry; none or several is ErrInvalidCredentials.
func (ss *session) readEntry(base, filter string, scope int) (*entry, error) {
	secs := max(1, int(ss.timeout/time.Second))
	req := ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 2, secs, false, filter, ss.attributes(), nil)
	res, err := ss.conn.Search(req)
	switch {
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultSizeLimitExceeded):
		return nil, auth.ErrInvalidCredentials // two or more entries: whose password is it?
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject):
		return nil, auth.ErrInvalidCredentials
	case err != nil:
		return nil, fmt.Errorf("%w: ldap search: %v", auth.ErrDirectoryUnavailable, err)
	case len(res.Entries) != 1:
		return nil, auth.ErrInvalidCredentials
	}
	e := res.Entries[0]
	out := &entry{dn: e.DN}
	if a := ss.settings.GetMailAttribute(); a != "" {
		out.mail = e.GetAttributeValue(a)
	}
	if a := ss.settings.GetQuotaAttribute(); a != "" {
		out.quota = e.GetAttributeValue(a)
	}
	if a := ss.settings.GetAliasAttribute(); a != "" {
		out.aliases = e.GetAttributeValues(a)
	}
	return out, nil
}

// bindError sorts a bind's failure: the directory refusing the credentials (RFC 4511
// 4.2.2, RFC 4513 6.3.1 invalidCredentials and its kin) or not answering.
func bindError(err error) error {
	if ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultNoSuchObject,
		ldap.LDAPResultInvalidDNSyntax, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInappropriateAuthentication,
		ldap.LDAPResultInsufficientAccessRights) {
		return auth.ErrInvalidCredentials
	}
	return fmt.Errorf("%w: ldap bind: %v", auth.ErrDirectoryUnavailable, err)
}

// quotaBytes reads a quota attribute: a decimal number of bytes.
func quotaBytes(value string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
	return n, err == nil
}
