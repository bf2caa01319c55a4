package metadata

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/strata-mail/strata/internal/scram"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// TestScramCredentials: CreateAccount and SetPassword store SCRAM keys derived from the
// password (RFC 5802 3), never the password; GetScramCredentials answers them for an
// enabled account and NotFound otherwise, including an account whose password was set
// before SCRAM (no keys) until its next SetPassword.
func TestScramCredentials(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	get := func(email string) (*metadatapb.ScramCredentials, error) {
		return c.GetScramCredentials(s.ctx(), &metadatapb.GetScramCredentialsRequest{Email: email, Hash: "SHA-256"})
	}
	creds := must(get("Alice@example.org"))
	if creds.GetIterations() != scram.DefaultIterations || len(creds.GetSalt()) != scram.SaltLen || creds.GetAccount().GetEmail() != alice {
		t.Fatalf("credentials %v", creds)
	}
	want := scram.SHA256.Derive("correct horse", creds.GetSalt(), int(creds.GetIterations()))
	if !bytes.Equal(creds.GetStoredKey(), want.StoredKey) || !bytes.Equal(creds.GetServerKey(), want.ServerKey) {
		t.Fatal("stored keys are not those of the password")
	}
	rec := storedAccount(t, s, alice)
	if raw := rec.String(); strings.Contains(raw, "correct horse") {
		t.Fatalf("the record holds the password: %s", raw)
	}
	_, err := c.GetScramCredentials(s.ctx(), &metadatapb.GetScramCredentialsRequest{Email: alice, Hash: "SHA-1"})
	wantCode(t, err, codes.NotFound) // SHA-1 keys only with ScramConfig.SHA1
	_, err = get("nobody@example.org")
	wantCode(t, err, codes.NotFound)

	must(c.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: alice, Disabled: true}))
	_, err = get(alice)
	wantCode(t, err, codes.NotFound)
	must(c.SetAccountDisabled(s.ctx(), &metadatapb.SetAccountDisabledRequest{RequestId: s.reqID(), Email: alice}))

	// An account as a password set before SCRAM left it: a hash, no keys.
	svc := NewService(s.node, s.fsm, nil)
	hash, err := HashPassword("old password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.propose(s.ctx(), s.reqID(), &metadatapb.Command{Op: &metadatapb.Command_CreateAccount{
		CreateAccount: &metadatapb.CreateAccountCommand{Email: "legacy@example.org", PasswordHash: hash},
	}}); err != nil {
		t.Fatal(err)
	}
	_, err = get("legacy@example.org")
	wantCode(t, err, codes.NotFound)
	must(c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: "legacy@example.org", Password: "old password"}))
	must(c.SetPassword(s.ctx(), &metadatapb.SetPasswordRequest{RequestId: s.reqID(), Email: "legacy@example.org", Password: "new password"}))
	creds = must(get("legacy@example.org"))
	if want := scram.SHA256.Derive("new password", creds.GetSalt(), int(creds.GetIterations())); !bytes.Equal(creds.GetStoredKey(), want.StoredKey) {
		t.Fatal("SetPassword stored keys of another password")
	}
}

// TestAppPasswords: an app password is generated, shown once, stored as a digest, logs in
// only to the services of its scopes (and only when the login names a service), is listed
// with its last use, and once revoked is refused by Authenticate and CheckCredential.
func TestAppPasswords(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	c := s.client
	added := must(c.AddAppPassword(s.ctx(), &metadatapb.AddAppPasswordRequest{RequestId: s.reqID(), Email: alice, Name: "phone", Scopes: []string{"IMAP", "imap"}}))
	pw := added.GetPassword()
	if len(pw) != 29 || added.GetAppPassword().GetName() != "phone" || strings.Join(added.GetAppPassword().GetScopes(), ",") != "imap" {
		t.Fatalf("AddAppPassword = %v", added)
	}
	rec := storedAccount(t, s, alice)
	if strings.Contains(rec.String(), pw) {
		t.Fatal("the record holds the app password")
	}
	for _, bad := range []*metadatapb.AddAppPasswordRequest{
		{Name: "phone", Scopes: []string{"imap"}},  // name taken
		{Name: "tablet", Scopes: []string{"pop3"}}, // unknown scope
		{Name: "tablet"},           // no scope
		{Scopes: []string{"imap"}}, // no name
	} {
		bad.RequestId, bad.Email = s.reqID(), alice
		if _, err := c.AddAppPassword(s.ctx(), bad); err == nil {
			t.Errorf("AddAppPassword(%v) succeeded", bad)
		}
	}

	login := func(service, password string) (*metadatapb.Account, error) {
		return c.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: password, Service: service})
	}
	acct := must(login("imap", pw))
	if acct.GetAppPassword() != "phone" || len(acct.GetCredentialStamp()) != credentialStampLen {
		t.Fatalf("app password login = %v", acct)
	}
	stamp := acct.GetCredentialStamp()
	_, err := login("managesieve", pw)
	wantCode(t, err, codes.Unauthenticated)
	_, err = login("", pw) // no service: the account password only
	wantCode(t, err, codes.Unauthenticated)
	must(login("managesieve", "correct horse"))

	check := func(service string) error {
		_, err := c.CheckCredential(s.ctx(), &metadatapb.CheckCredentialRequest{Email: alice, CredentialStamp: stamp, Service: service})
		// A session's re-check (GetAccount with the stamp) agrees with CheckCredential.
		recheck := must(c.GetAccount(s.ctx(), &metadatapb.GetAccountRequest{Email: alice, CredentialStamp: stamp, Service: service}))
		if recheck.GetCredentialRevoked() != (err != nil) {
			t.Errorf("GetAccount re-check for %s: revoked %v, CheckCredential %v", service, recheck.GetCredentialRevoked(), err)
		}
		return err
	}
	if err := check("imap"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, check("managesieve"), codes.Unauthenticated)

	list := must(c.ListAppPasswords(s.ctx(), &metadatapb.ListAppPasswordsRequest{Email: alice})).GetAppPasswords()
	if len(list) != 1 || list[0].GetLastUsedUnix() == 0 || list[0].GetCreatedUnix() == 0 {
		t.Fatalf("ListAppPasswords = %v", list)
	}

	// A password change leaves app passwords alone; a revocation ends one.
	must(c.SetPassword(s.ctx(), &metadatapb.SetPasswordRequest{RequestId: s.reqID(), Email: alice, Password: "new"}))
	if err := check("imap"); err != nil {
		t.Fatal(err)
	}
	revoked := must(c.RevokeAppPassword(s.ctx(), &metadatapb.RevokeAppPasswordRequest{RequestId: s.reqID(), Email: alice, IdOrName: list[0].GetId()}))
	if revoked.GetName() != "phone" {
		t.Fatalf("revoked %v", revoked)
	}
	wantCode(t, check("imap"), codes.Unauthenticated)
	_, err = login("imap", pw)
	wantCode(t, err, codes.Unauthenticated)
	_, err = c.RevokeAppPassword(s.ctx(), &metadatapb.RevokeAppPasswordRequest{RequestId: s.reqID(), Email: alice, IdOrName: "phone"})
	wantCode(t, err, codes.NotFound)
}

// storedAccount reads the account's record from the store.
func storedAccount(t *testing.T, s *testService, email string) *metadatapb.AccountRecord {
	t.Helper()
	v := s.fsm.view()
	defer v.close()
	rec, _, err := v.account(email)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// noTextIndex is a TextIndex that is never asked: it makes a service one that keeps the
// index.
type noTextIndex struct{ TextIndex }

// TestLoginAnswersSearchIndex: the answers of the calls a login makes say whether the node
// keeps the text-search index (Account.search_index), from which a frontend's session
// announces SEARCH=FUZZY: true on a node with one, false on a node without, for a password,
// an app password, a cached credential, SCRAM and a session's re-check alike.
func TestLoginAnswersSearchIndex(t *testing.T) {
	s := startService(t)
	s.setupAlice()
	app := must(s.client.AddAppPassword(s.ctx(), &metadatapb.AddAppPasswordRequest{RequestId: s.reqID(), Email: alice, Name: "phone", Scopes: []string{"imap"}})).GetPassword()
	for _, indexed := range []bool{false, true} {
		svc := NewService(s.node, s.fsm, nil)
		if indexed {
			svc.SetTextIndex(noTextIndex{})
		}
		password := must(svc.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: "correct horse"}))
		answers := map[string]*metadatapb.Account{
			"Authenticate":                 password,
			"Authenticate (app password)":  must(svc.Authenticate(s.ctx(), &metadatapb.AuthenticateRequest{Email: alice, Password: app, Service: "imap"})),
			"CheckCredential":              must(svc.CheckCredential(s.ctx(), &metadatapb.CheckCredentialRequest{Email: alice, CredentialStamp: password.GetCredentialStamp()})),
			"GetScramCredentials":          must(svc.GetScramCredentials(s.ctx(), &metadatapb.GetScramCredentialsRequest{Email: alice, Hash: "SHA-256"})).GetAccount(),
			"GetAccount":                   must(svc.GetAccount(s.ctx(), &metadatapb.GetAccountRequest{Email: alice})),
			"GetAccount (session recheck)": must(svc.GetAccount(s.ctx(), &metadatapb.GetAccountRequest{Email: alice, CredentialStamp: password.GetCredentialStamp()})),
		}
		for call, account := range answers {
			if account.GetEmail() != alice || account.GetSearchIndex() != indexed {
				t.Errorf("index %v: %s answered %v", indexed, call, account)
			}
		}
	}
	// Never stored: the record's account does not say it.
	if storedAccount(t, s, alice).GetAccount().GetSearchIndex() {
		t.Error("the stored account holds search_index")
	}
}
