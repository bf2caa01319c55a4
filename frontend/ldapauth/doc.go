// Package ldapauth makes an LDAP directory the account source of a tenant (issue 15): a
// frontend checks the LOGIN and AUTHENTICATE PLAIN of an LDAP tenant's accounts with a bind
// to the directory, provisions the Strata account at the first success (mailbox storage
// needs one; it is created without a password), and applies the quota and aliases of the
// mapped attributes. LMTP asks it for a recipient the metadata service does not know, so
// mail to a user who never logged in is delivered (search mode; see Source.Resolve).
//
// The settings are the tenant's, in the replicated state (metadata.proto LdapSettings,
// `strata tenant ldap set`); a frontend reads them by the login's domain and reuses them for
// SettingsTTL. Two modes:
//
//   - bind: bind as the DN of user_dn_template with the user's password (RFC 4513 5.1.3
//     simple bind), then read the user's own entry for the mapped attributes;
//   - search: bind as the service account (its password read from bind_password_file on
//     this host at each use, so a rotated file needs no restart), search base_dn with filter
//     for exactly one entry (two or more refuse the login), then bind as that entry's DN
//     with the user's password.
//
// Invariants:
//
//   - A password never crosses the network in the clear: ldaps://, or ldap:// upgraded
//     with StartTLS (RFC 4511 4.14, RFC 4513 3) before any bind; plaintext only when the
//     settings allow it and the host is loopback (checked by the metadata service too). The
//     server certificate is verified against ca_file or the system roots, TLS 1.2 or newer.
//   - The login name cannot change a filter or a DN: it is escaped with ldap.EscapeFilter
//     (RFC 4515 3) in a filter and ldap.EscapeDN (RFC 4514 2.4) in a DN, and placeholders
//     are replaced in one pass, so an escaped value is never read again as a placeholder.
//   - An empty password is refused before any bind: for a simple bind it is an
//     unauthenticated bind (RFC 4513 5.1.2), which servers may accept as anonymous.
//   - Every exchange with the directory has a hard deadline (the tenant's timeout, within
//     the caller's context) on the connection itself, so a directory that hangs, refuses or
//     cannot be reached answers auth.ErrDirectoryUnavailable (IMAP NO [UNAVAILABLE]) and
//     never holds a login longer than the timeout.
//   - The cache rules of frontend/auth.Cache hold: a verified login is remembered under the
//     HMAC of login and password (no password is held) for the cache TTL, with a stamp that
//     names the tenant's settings and the account; a changed setting misses. Failures are
//     never remembered, so each wrong password costs a bind to the directory. A hit still
//     reads the account, so an account disabled in Strata is refused at its next login,
//     cached or not. A password changed in the directory is seen when the entry expires.
//   - The account, its quota and its aliases are written only after a successful bind, and
//     only what differs (a read first), so logins cost no Raft write once provisioned; they
//     are applied at each login that misses the cache, that is at most once per cache TTL
//     per login and password on each frontend.
//   - No secret is logged: neither the user's password nor the service account's.
//   - Connections are pooled per tenant (Source.acquire, at most 4 idle for 30 s): every
//     exchange starts with a bind, so a reused connection holds nothing of its previous
//     user; one goes back only after an exchange the directory answered, is checked at
//     reuse (closed by the directory or the network, or too old: a new one instead), and
//     the pool of a tenant whose settings changed is emptied. The TLS handshake of a new
//     connection is paid once, not per login. A login is admitted by the brute-force guard
//     (auth.Directory's admit) before it touches the pool or the directory.
//
// Why github.com/go-ldap/ldap/v3: it is the maintained pure-Go LDAPv3 client (RFC 4511)
// that Go services use for this job (Grafana, Gitea, Vault and Teleport authenticate
// with it), with LDAPS and StartTLS over a caller's tls.Config and net.Conn, simple bind,
// search with size and time limits, result codes as typed errors, and the escaping
// functions for filters and DNs; no cgo (OpenLDAP's libldap would need it) and one small
// dependency (go-asn1-ber).
package ldapauth
