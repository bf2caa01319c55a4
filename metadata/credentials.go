package metadata

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Credentials besides the account password: the SCRAM keys derived from it (RFC 5802 3)
// and app passwords.
//
// Invariants:
//
//   - Neither a password nor an app password ever enters the Raft log or the store: the
//     service derives the SCRAM keys and the app password digest before proposing.
//   - SCRAM keys belong to the password they were derived from: SetPassword replaces them
//     in the same command as the hash; an account whose password was set before they
//     existed has none until its next SetPassword, and GetScramCredentials answers NotFound
//     for it (the frontend fails the exchange, PLAIN still works).
//   - An app password logs in only to a service in its scopes, and only while it exists:
//     its credential stamp (appPasswordStamp) is checked by CheckCredential like the
//     password's, so a revocation refuses it at the next login on every frontend.

// ScramConfig is the SCRAM key derivation of SetPassword and CreateAccount.
type ScramConfig struct {
	// Iterations of PBKDF2 (RFC 5802 3 Hi); scram.DefaultIterations when 0, and at least
	// scram.MinIterations (RFC 7677 4).
	Iterations int
	// SHA1 also derives SCRAM-SHA-1 keys (RFC 5802), for frontends that offer it.
	SHA1 bool
}

// SetScram sets the SCRAM key derivation. Call it before serving.
func (s *Service) SetScram(cfg ScramConfig) {
	if cfg.Iterations == 0 {
		cfg.Iterations = scram.DefaultIterations
	}
	cfg.Iterations = min(max(cfg.Iterations, scram.MinIterations), scram.MaxIterations)
	s.scram = cfg
}

// scramKeys derives the stored SCRAM keys of password (nil for no password).
func (s *Service) scramKeys(password string) ([]*metadatapb.ScramCredentials, error) {
	if password == "" {
		return nil, nil
	}
	iterations := s.scram.Iterations
	if iterations == 0 {
		iterations = scram.DefaultIterations
	}
	hashes := []scram.Hash{scram.SHA256}
	if s.scram.SHA1 {
		hashes = append(hashes, scram.SHA1)
	}
	var out []*metadatapb.ScramCredentials
	for _, h := range hashes {
		salt := make([]byte, scram.SaltLen)
		if _, err := rand.Read(salt); err != nil {
			return nil, status.Errorf(codes.Internal, "scram salt: %v", err)
		}
		k := h.Derive(password, salt, iterations)
		out = append(out, &metadatapb.ScramCredentials{
			Hash: h.Name, Salt: k.Salt, Iterations: uint32(k.Iterations), StoredKey: k.StoredKey, ServerKey: k.ServerKey,
		})
	}
	return out, nil
}

// GetScramCredentials answers the stored SCRAM keys of an enabled account for one hash.
// Every refusal is the one NotFound, so the answer does not say which accounts exist.
func (s *Service) GetScramCredentials(ctx context.Context, req *metadatapb.GetScramCredentialsRequest) (*metadatapb.ScramCredentials, error) {
	rec, found, err := s.readAccount(ctx, req.GetEmail())
	if err != nil {
		return nil, err
	}
	if found && !rec.GetAccount().GetDisabled() && rec.GetPasswordHash() != "" {
		for _, c := range rec.GetScram() {
			if c.GetHash() == req.GetHash() {
				out := proto.Clone(c).(*metadatapb.ScramCredentials)
				out.Account = s.loginAnswer(rec.GetAccount())
				// For the session's re-check of its credential (GetAccount): a new
				// password derives new keys, and ends the SCRAM sessions of the old one.
				out.Account.CredentialStamp = credentialStamp(rec.GetPasswordHash())
				return out, nil
			}
		}
	}
	return nil, status.Error(codes.NotFound, "no SCRAM credentials")
}

// readAccount reads an account's record on a linearizable read (as a login's).
func (s *Service) readAccount(ctx context.Context, email string) (*metadatapb.AccountRecord, bool, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, false, err
	}
	defer v.close()
	rec, found, err := v.account(accountName(email))
	if err != nil {
		return nil, false, storageStatus(err)
	}
	return rec, found, nil
}

// App passwords.

// AppPasswordScopes are the services an app password may be scoped to: the service names
// frontends send in AuthenticateRequest.service.
var AppPasswordScopes = []string{"imap", "managesieve", "lmtp-submission"}

const (
	// maxAppPasswords bounds the app passwords of one account (each login compares them all).
	maxAppPasswords = 64
	maxAppNameLen   = 64
	// appPasswordTouchEvery is how stale last_used_unix may get: a login records its use
	// (one Raft command) only when the stored one is older.
	appPasswordTouchEvery = 5 * time.Minute
)

// appPasswordDigest is what is stored of an app password. A generated app password has
// 120 random bits, so one SHA-256 is as hard to invert as any slow hash would make it.
func appPasswordDigest(password string) []byte {
	sum := sha256.Sum256([]byte("strata app password\x00" + password))
	return sum[:]
}

// appPasswordStamp is the credential stamp (Account.credential_stamp) of a login with one
// app password; it differs from every password stamp (another prefix) and goes with the
// record, so revoking the app password invalidates it.
func appPasswordStamp(ap *metadatapb.AppPasswordRecord) []byte {
	sum := sha256.Sum256(append([]byte("strata app password stamp\x00"+ap.GetAppPassword().GetId()+"\x00"), ap.GetDigest()...))
	return sum[:credentialStampLen]
}

// newAppPassword generates an app password: 120 random bits as six groups of four base32
// letters and digits, easy to type on a phone.
func newAppPassword() (string, error) {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b))
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, "-"), nil
}

func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "an app password needs at least one scope of %s", strings.Join(AppPasswordScopes, ", "))
	}
	var out []string
	for _, sc := range scopes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		if !slices.Contains(AppPasswordScopes, sc) {
			return nil, status.Errorf(codes.InvalidArgument, "unknown scope %q (known: %s)", sc, strings.Join(AppPasswordScopes, ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// AddAppPassword generates an app password, stores its digest and answers it once.
func (s *Service) AddAppPassword(ctx context.Context, req *metadatapb.AddAppPasswordRequest) (*metadatapb.AddAppPasswordResponse, error) {
	name := strings.TrimSpace(req.GetName())
	if name == "" || len(name) > maxAppNameLen {
		return nil, status.Errorf(codes.InvalidArgument, "an app password needs a name of 1 to %d bytes", maxAppNameLen)
	}
	scopes, err := checkScopes(req.GetScopes())
	if err != nil {
		return nil, err
	}
	password, err := newAppPassword()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "generate app password: %v", err)
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, status.Errorf(codes.Internal, "generate app password id: %v", err)
	}
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_AddAppPassword{AddAppPassword: &metadatapb.AddAppPasswordCommand{
		Email:       accountName(req.GetEmail()),
		AppPassword: &metadatapb.AppPassword{Id: hex.EncodeToString(id), Name: name, Scopes: scopes},
		Digest:      appPasswordDigest(password),
	}}})
	if err != nil {
		return nil, err
	}
	// A retried request answers the first attempt's record, whose password was another:
	// only the attempt whose id went in can show its password.
	ap := res.GetAppPassword()
	if ap.GetId() != hex.EncodeToString(id) {
		return nil, status.Error(codes.AlreadyExists, "the app password was added by an earlier attempt of this request, whose password cannot be shown again; revoke it and add another")
	}
	return &metadatapb.AddAppPasswordResponse{AppPassword: ap, Password: password}, nil
}

// ListAppPasswords lists an account's app passwords (never their digests).
func (s *Service) ListAppPasswords(ctx context.Context, req *metadatapb.ListAppPasswordsRequest) (*metadatapb.ListAppPasswordsResponse, error) {
	rec, found, err := s.readAccount(ctx, req.GetEmail())
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "account %q not found", req.GetEmail())
	}
	out := &metadatapb.ListAppPasswordsResponse{}
	for _, ap := range rec.GetAppPasswords() {
		out.AppPasswords = append(out.AppPasswords, ap.GetAppPassword())
	}
	return out, nil
}

// RevokeAppPassword deletes an app password, by id or name.
func (s *Service) RevokeAppPassword(ctx context.Context, req *metadatapb.RevokeAppPasswordRequest) (*metadatapb.AppPassword, error) {
	req.Email = accountName(req.GetEmail())
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_RevokeAppPassword{RevokeAppPassword: req}})
	if err != nil {
		return nil, err
	}
	return res.GetAppPassword(), nil
}

// matchAppPassword returns the account's app password that password is, if it may log in
// to service. Every digest is compared, in constant time.
func matchAppPassword(rec *metadatapb.AccountRecord, service, password string) *metadatapb.AppPasswordRecord {
	if service == "" || len(rec.GetAppPasswords()) == 0 {
		return nil
	}
	digest := appPasswordDigest(password)
	var match *metadatapb.AppPasswordRecord
	for _, ap := range rec.GetAppPasswords() {
		if subtle.ConstantTimeCompare(ap.GetDigest(), digest) == 1 {
			match = ap
		}
	}
	if match == nil || !slices.Contains(match.GetAppPassword().GetScopes(), service) {
		return nil
	}
	return match
}

// matchAppPasswordStamp returns the account's app password whose stamp is stamp, if it may
// log in to service.
func matchAppPasswordStamp(rec *metadatapb.AccountRecord, service string, stamp []byte) *metadatapb.AppPasswordRecord {
	if service == "" {
		return nil
	}
	var match *metadatapb.AppPasswordRecord
	for _, ap := range rec.GetAppPasswords() {
		if subtle.ConstantTimeCompare(appPasswordStamp(ap), stamp) == 1 {
			match = ap
		}
	}
	if match == nil || !slices.Contains(match.GetAppPassword().GetScopes(), service) {
		return nil
	}
	return match
}

// appPasswordLogin is the answer to a login with app password ap, whose last use it
// records when the stored one is older than appPasswordTouchEvery. A failure to record
// it is logged, never a reason to refuse the login.
func (s *Service) appPasswordLogin(ctx context.Context, rec *metadatapb.AccountRecord, ap *metadatapb.AppPasswordRecord) *metadatapb.Account {
	now := time.Now().Add(s.clockOffset)
	if now.Sub(time.Unix(ap.GetAppPassword().GetLastUsedUnix(), 0)) >= appPasswordTouchEvery {
		id := make([]byte, 16)
		rand.Read(id)
		email := rec.GetAccount().GetEmail()
		if _, err := s.propose(ctx, "touch-app-password-"+hex.EncodeToString(id), &metadatapb.Command{Op: &metadatapb.Command_TouchAppPassword{
			TouchAppPassword: &metadatapb.TouchAppPasswordCommand{Email: email, Id: ap.GetAppPassword().GetId()},
		}}); err != nil {
			s.logger.Warn("record app password use", "account", email, "app_password", ap.GetAppPassword().GetName(), "err", err)
		}
	}
	account := rec.GetAccount()
	account.AppPassword = ap.GetAppPassword().GetName()
	return s.loginAnswer(account)
}

// The commands.

func (c *cmdCtx) addAppPassword(req *metadatapb.AddAppPasswordCommand) (*metadatapb.CommandResult, error) {
	email, _ := NormalizeEmail(req.GetEmail())
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	ap := proto.Clone(req.GetAppPassword()).(*metadatapb.AppPassword)
	for _, old := range rec.GetAppPasswords() {
		if old.GetAppPassword().GetName() == ap.GetName() {
			return nil, errExists("account %q has an app password named %q", email, ap.GetName())
		}
		if old.GetAppPassword().GetId() == ap.GetId() {
			return nil, errExists("app password id %q is taken, add it again", ap.GetId())
		}
	}
	if len(rec.GetAppPasswords()) >= maxAppPasswords {
		return nil, errPrecondition("account %q has %d app passwords, the most it may have", email, maxAppPasswords)
	}
	ap.CreatedUnix = c.now / 1e9
	rec.AppPasswords = append(rec.AppPasswords, &metadatapb.AppPasswordRecord{AppPassword: ap, Digest: req.GetDigest()})
	c.tx.setProto(accountKey(email), rec)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_AppPassword{AppPassword: ap}}, nil
}

func (c *cmdCtx) revokeAppPassword(req *metadatapb.RevokeAppPasswordRequest) (*metadatapb.CommandResult, error) {
	email, _ := NormalizeEmail(req.GetEmail())
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rec.GetAppPasswords(), func(ap *metadatapb.AppPasswordRecord) bool {
		return ap.GetAppPassword().GetId() == req.GetIdOrName() || ap.GetAppPassword().GetName() == req.GetIdOrName()
	})
	if i < 0 {
		return nil, errNotFound("account %q has no app password %q", email, req.GetIdOrName())
	}
	ap := rec.AppPasswords[i].GetAppPassword()
	rec.AppPasswords = slices.Delete(rec.AppPasswords, i, i+1)
	c.tx.setProto(accountKey(email), rec)
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_AppPassword{AppPassword: ap}}, nil
}

// touchAppPassword records a login's time as the app password's last use; a revoked one
// is left revoked.
func (c *cmdCtx) touchAppPassword(req *metadatapb.TouchAppPasswordCommand) (*metadatapb.CommandResult, error) {
	email, _ := NormalizeEmail(req.GetEmail())
	rec, err := c.loadAccount(email)
	if err != nil {
		return nil, err
	}
	for _, ap := range rec.GetAppPasswords() {
		if ap.GetAppPassword().GetId() == req.GetId() && ap.GetAppPassword().GetLastUsedUnix() < c.now/1e9 {
			ap.AppPassword.LastUsedUnix = c.now / 1e9
			c.tx.setProto(accountKey(email), rec)
		}
	}
	return okResult(), nil
}
