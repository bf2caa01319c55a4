// Package auth is the account check the mail protocols share: IMAP (frontend/imap) and
// ManageSieve (frontend/managesieve) verify a password the same way (through frontend/sasl
// for AUTHENTICATE) and allow a plaintext password under the same policy.
//
// Invariants:
//
//   - Every refusal of a password (unknown account, wrong password, disabled account, a name
//     the service cannot read) is the one error ErrInvalidCredentials, so a client cannot
//     tell which accounts exist; a login the metadata leader's brute-force guard refuses
//     unchecked is a *ThrottledError (and, from Logins, ErrTooManyFailures), the same for
//     every account; every other error (the service unreachable) is returned as the
//     service gave it, for the protocol to answer "try again later".
//   - Logins (login.go) is the one entry of IMAP and ManageSieve: every login, whatever
//     checks it (the metadata service, a directory, the frontend itself for SCRAM and
//     OAuth), goes through the metadata leader's brute-force guard with the client's
//     address (Login; Settle), waits out its delays and is counted, and every refused
//     login is logged in the one line fail2ban matches (docs/security.md).
//   - A password is accepted in plaintext only over TLS, from loopback when the server
//     trusts loopback, or when the configuration allows it everywhere (PlaintextAllowed).
//   - Nothing here does I/O but the metadata calls of a login (Authenticate, or
//     CheckCredential for a login the Cache holds), which take the caller's context.
package auth

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// ErrInvalidCredentials is every refused password, whatever the reason.
var ErrInvalidCredentials = errors.New("invalid credentials")

// Services a login names (AuthenticateRequest.service): an app password logs in only to the
// services in its scopes (strata user app-password).
const (
	ServiceIMAP        = "imap"
	ServiceManageSieve = "managesieve"
)

// ErrDirectoryUnavailable is a login a Directory could not check because the directory did
// not answer (down, unreachable, too slow, refusing TLS): the protocol answers "try again
// later" (IMAP NO [UNAVAILABLE]), not "invalid credentials".
var ErrDirectoryUnavailable = errors.New("account directory unavailable")

// Directory checks the passwords of the accounts of tenants that keep them outside Strata
// (frontend/ldapauth: LDAP).
type Directory interface {
	// CheckPassword verifies username and password; handled is false when the account's
	// tenant keeps its passwords in Strata. Once it knows it handles the account, and
	// before it checks anything (its cache included), it calls admit, the brute-force
	// guard (Logins.Login), and returns admit's error as it is when there is one
	// (ErrTooManyFailures). ctx bounds the whole login, admit's waits included; the
	// directory bounds its own calls. Its refusals are ErrInvalidCredentials; a directory
	// that did not answer is ErrDirectoryUnavailable.
	CheckPassword(ctx context.Context, username, password string, admit func(context.Context) error) (account *metadatapb.Account, handled bool, err error)
}

// CheckPassword verifies username and password (the account's, or an app password scoped
// to service) of a client at remoteIP (may be empty) with the metadata service and returns
// the account, with the credential stamp of what logged in (Account.credential_stamp), by
// which the session re-checks its credential (GetAccount). The user name is compared in
// lower case, as accounts are stored. Every call hashes the password; Cache.CheckPassword
// is the same check through a cache. A login the metadata leader's guard refuses unchecked
// is a *ThrottledError. Logins.Login is the protocols' entry (it adds the Directory, the
// guard's delays, metrics and the failure log).
func CheckPassword(ctx context.Context, md metadatapb.MetadataClient, service, username, password, remoteIP string) (*metadatapb.Account, error) {
	return authenticate(ctx, md, service, strings.ToLower(username), password, remoteIP)
}

// authenticate runs Authenticate for email (lower case) and returns the account with its
// credential stamp.
func authenticate(ctx context.Context, md metadatapb.MetadataClient, service, email, password, remoteIP string) (*metadatapb.Account, error) {
	account, err := md.Authenticate(ctx, &metadatapb.AuthenticateRequest{Email: email, Password: password, Service: service, RemoteIp: remoteIP})
	if err != nil {
		if t := throttled(err); t != nil {
			return nil, t
		}
		if refusal(err) {
			return nil, ErrInvalidCredentials
		}
		return nil, err
	}
	if account.GetDisabled() {
		return nil, ErrInvalidCredentials
	}
	return account, nil
}

// Policy says where a password may travel in plaintext.
type Policy struct {
	// AllowPlaintext allows it on every connection.
	AllowPlaintext bool
	// TrustLoopback allows it on connections from a loopback address, where the password
	// never leaves the machine (the embedded mode).
	TrustLoopback bool
}

// PlaintextAllowed reports whether a password may be sent on a connection from remote:
// over TLS, from loopback when loopback is trusted, or everywhere when the policy allows
// it. RFC 9051 11.1, RFC 5804 2.1 (PLAIN only under TLS unless configured otherwise).
func (p Policy) PlaintextAllowed(tlsActive bool, remote net.Addr) bool {
	return tlsActive || p.AllowPlaintext || (p.TrustLoopback && IsLoopback(remote))
}

// IsLoopback reports whether addr is a TCP address on the loopback network.
func IsLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// RecheckInterval is how often a session re-checks its login (Recheck): a disabled or
// deleted account's sessions, and those whose credential was revoked, end at their first
// command after at most this long.
const RecheckInterval = 2 * time.Second

// Recheck answers why a session logged in as account to service must end, "" when it may
// go on: the account was disabled or deleted since login, or the credential it logged in
// with no longer logs in (the password changed, the app password was revoked or narrowed
// to other services). Only a login by password, app password or SCRAM carries its
// credential stamp; one by OAuth token or through a directory has none and ends only with
// its account. An error (the metadata service cannot answer) is not a reason to end it.
func Recheck(ctx context.Context, md metadatapb.MetadataClient, account *metadatapb.Account, service string) (string, error) {
	acct, err := md.GetAccount(ctx, &metadatapb.GetAccountRequest{
		Email: account.GetEmail(), CredentialStamp: account.GetCredentialStamp(), Service: service,
	})
	switch {
	case status.Code(err) == codes.NotFound:
		return "Account deleted", nil
	case err != nil:
		return "", err
	case acct.GetDisabled():
		return "Account disabled", nil
	case acct.GetCredentialRevoked():
		return "Credentials changed or revoked, log in again", nil
	}
	return "", nil
}
