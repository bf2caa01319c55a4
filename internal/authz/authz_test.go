package authz_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/strata-mail/strata/internal/authz"
	"github.com/strata-mail/strata/internal/identity"
	"github.com/strata-mail/strata/internal/identity/identitytest"
	"github.com/strata-mail/strata/internal/testlog"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/clusterpb"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/replication"
	"github.com/strata-mail/strata/replication/cluster"
)

const rpcTimeout = 10 * time.Second

// syncBuffer is the audit log's destination, written by handler goroutines.
type syncBuffer struct{ testlog.Buffer }

// events decodes the audit log's JSON lines.
func (b *syncBuffer) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		ev := map[string]any{}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// cluster is one metadata node serving the metadata and cluster admin services behind the
// authorization interceptors, over TLS with the test CA, and the same services on a
// plaintext listener built with AllowPlaintext.
type testCluster struct {
	ca        *identitytest.CA
	addr      string // TLS
	plainAddr string // plaintext, AllowPlaintext
	strict    string // plaintext, AllowPlaintext false
	audit     *syncBuffer
	tokenKey  ed25519.PrivateKey
}

func start(t *testing.T) *testCluster {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	fsm, err := metadata.OpenFSM(filepath.Join(dir, "fsm"), logger)
	if err != nil {
		t.Fatal(err)
	}
	node, err := replication.Open(replication.Config{
		NodeID: "meta-1", DataDir: dir, RaftBind: "127.0.0.1:0", Bootstrap: true, FSM: fsm, Logger: logger,
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 2 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), rpcTimeout)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{ca: identitytest.NewCA(t), audit: &syncBuffer{}}
	tc.tokenKey, err = identity.GenerateTokenKey()
	if err != nil {
		t.Fatal(err)
	}
	svc := metadata.NewService(node, fsm, logger)
	admin := cluster.NewAdmin(node, fsm.DigestAt, nil, insecure.NewCredentials(), logger)
	serve := func(creds credentials.TransportCredentials, allowPlaintext bool) string {
		az := authz.New(authz.Config{
			Tenancy:        svc,
			Tokens:         identity.NewVerifier(tc.tokenKey.Public().(ed25519.PublicKey)),
			AllowPlaintext: allowPlaintext,
			Audit:          slog.New(slog.NewJSONHandler(tc.audit, nil)),
		})
		opts := append(az.ServerOptions(), svc.ConsistencyOptions()...)
		opts = append(opts, grpc.WaitForHandlers(true))
		if creds != nil {
			opts = append(opts, grpc.Creds(creds))
		}
		srv := grpc.NewServer(opts...)
		metadatapb.RegisterMetadataServer(srv, svc)
		clusterpb.RegisterClusterAdminServer(srv, admin)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	t.Cleanup(func() {
		_ = node.Close()
		_ = fsm.Close()
	})
	tc.addr = serve(credentials.NewTLS(tc.ca.ServerTLS(t)), false)
	tc.plainAddr = serve(nil, true)
	tc.strict = serve(nil, false)
	return tc
}

// conn dials the TLS endpoint presenting the certificate for uri ("" for none).
func (tc *testCluster) conn(t *testing.T, uri string, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	var certs []tls.Certificate
	if uri != "" {
		certs = append(certs, tc.ca.Issue(t, identitytest.Leaf{URIs: []string{uri}}))
	}
	return dial(t, tc.addr, append(extra, grpc.WithTransportCredentials(credentials.NewTLS(tc.ca.ClientTLS(certs...))))...)
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (tc *testCluster) token(t *testing.T, id identity.Identity, ttl time.Duration) string {
	t.Helper()
	token, _, err := identity.IssueToken(tc.tokenKey, id, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), rpcTimeout)
	t.Cleanup(cancel)
	return ctx
}

var reqSeq atomic.Int64

func reqID() string { return fmt.Sprintf("authz-%d", reqSeq.Add(1)) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// setup creates tenants acme (acme.org) and other (other.org) with an account each, as the
// cluster administrator.
func (tc *testCluster) setup(t *testing.T) {
	t.Helper()
	c := metadatapb.NewMetadataClient(tc.conn(t, "strata://admin/cluster"))
	for _, tn := range []struct{ name, domain, user string }{{"acme", "acme.org", "u@acme.org"}, {"other", "other.org", "v@other.org"}} {
		if _, err := c.CreateTenant(ctx(t), &metadatapb.CreateTenantRequest{RequestId: reqID(), Name: tn.name, Domains: []string{tn.domain}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateAccount(ctx(t), &metadatapb.CreateAccountRequest{RequestId: reqID(), Email: tn.user, Password: "pw-" + tn.name}); err != nil {
			t.Fatal(err)
		}
	}
}

// services are the services a metadata node serves.
func services(t *testing.T) []protoreflect.ServiceDescriptor {
	t.Helper()
	var out []protoreflect.ServiceDescriptor
	for _, name := range []protoreflect.FullName{"strata.metadata.v1.Metadata", "strata.metadata.v1.BlobAdmin", "strata.metadata.v1.Backup", "strata.cluster.v1.ClusterAdmin"} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.(protoreflect.ServiceDescriptor))
	}
	return out
}

func fullMethod(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// TestEveryRPCHasARule fails when an RPC is added to a service without a row in the
// table, when a row names an RPC that does not exist, or a field its request lacks.
func TestEveryRPCHasARule(t *testing.T) {
	seen := map[string]bool{}
	for _, sd := range services(t) {
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			name := fullMethod(m)
			seen[name] = true
			r, ok := authz.RuleFor(name)
			if !ok {
				t.Errorf("%s has no row in internal/authz/rules.go", name)
				continue
			}
			for _, f := range r.Fields() {
				fd := m.Input().Fields().ByName(protoreflect.Name(f))
				if fd == nil || fd.Kind() != protoreflect.StringKind {
					t.Errorf("%s: the row names %q, not a string field of %s", name, f, m.Input().FullName())
				}
			}
			if m.IsStreamingServer() && r.TenantAdmins() {
				t.Errorf("%s streams; the stream interceptor cannot scope a tenant admin", name)
			}
			if r.TenantAdmins() && len(r.Fields()) == 0 {
				t.Errorf("%s: a tenant admin row with no scope field", name)
			}
		}
	}
	for _, name := range authz.Methods() {
		if !seen[name] {
			t.Errorf("the table has a row for %s, which no service has", name)
		}
	}
}

// otherValue and ownValue fill a scope field for the tenant-scoping test.
func fill(msg protoreflect.Message, field string, kind string, own bool) {
	values := map[string][2]string{
		"owner":  {"v@other.org", "nobody@acme.org"},
		"tenant": {"other", "acme"},
		"domain": {"other.org", "acme.org"},
	}[kind]
	v := values[0]
	if own {
		v = values[1]
	}
	fd := msg.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd.IsList() {
		msg.Mutable(fd).List().Append(protoreflect.ValueOfString(v))
		return
	}
	msg.Set(fd, protoreflect.ValueOfString(v))
}

// TestTenantAdminConfinedToItsTenant calls every RPC a tenant admin may call with each
// scope field naming another tenant's account, address, tenant or domain (the others its
// own): PermissionDenied every time; and with all of them its own: never refused by
// authorization.
func TestTenantAdminConfinedToItsTenant(t *testing.T) {
	tc := start(t)
	tc.setup(t)
	conn := tc.conn(t, "strata://admin/tenant/acme")
	tried := 0
	for _, sd := range services(t) {
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			name := fullMethod(m)
			r, _ := authz.RuleFor(name)
			if !r.TenantAdmins() {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
			if err != nil {
				t.Fatal(err)
			}
			out, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
			if err != nil {
				t.Fatal(err)
			}
			build := func(foreign string) proto.Message {
				msg := mt.New()
				if fd := msg.Descriptor().Fields().ByName("request_id"); fd != nil {
					msg.Set(fd, protoreflect.ValueOfString(reqID()))
				}
				for kind, fields := range r.Scope() {
					for _, f := range fields {
						fill(msg, f, kind, f != foreign)
					}
				}
				return msg.Interface()
			}
			for kind, fields := range r.Scope() {
				for _, f := range fields {
					tried++
					req := build(f)
					err := conn.Invoke(ctx(t), name, req, out.New().Interface())
					wantCode(t, name+" with "+kind+" field "+f+" of another tenant", err, codes.PermissionDenied)
				}
			}
			err = conn.Invoke(ctx(t), name, build(""), out.New().Interface())
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
				t.Errorf("%s with its own tenant's names: %v", name, err)
			}
		}
	}
	if tried < 30 {
		t.Errorf("only %d tenant-scoped fields tried", tried)
	}

	c := metadatapb.NewMetadataClient(conn)
	_, err := c.ListAccounts(ctx(t), &metadatapb.ListAccountsRequest{})
	wantCode(t, "ListAccounts of all tenants", err, codes.PermissionDenied)
	_, err = c.SetQuota(ctx(t), &metadatapb.SetQuotaRequest{RequestId: reqID(), Tenant: "acme", Limits: &metadatapb.QuotaLimits{Messages: proto.Uint64(1 << 40)}})
	wantCode(t, "SetQuota of its own tenant's root", err, codes.PermissionDenied)
	_, err = c.SetAcl(ctx(t), &metadatapb.SetAclRequest{RequestId: reqID(), Account: "tenant:other", Name: "Shared", Identifier: "anyone", Rights: "lr"})
	wantCode(t, "SetAcl of another tenant's shared mailbox", err, codes.PermissionDenied)
	_, err = c.SetAcl(ctx(t), &metadatapb.SetAclRequest{RequestId: reqID(), Account: "U@ACME.ORG", User: "v@other.org", Name: "INBOX", Identifier: "anyone", Rights: "lr"})
	wantCode(t, "SetAcl acting as another tenant's user", err, codes.PermissionDenied)
	acct, err := c.SetPassword(ctx(t), &metadatapb.SetPasswordRequest{RequestId: reqID(), Email: "U@Acme.org", Password: "new password"})
	if err != nil || acct.GetEmail() != "u@acme.org" {
		t.Errorf("SetPassword of its own user: %v, %v", acct, err)
	}
}

// TestCallerKinds checks rows by caller kind, over real mTLS.
func TestCallerKinds(t *testing.T) {
	tc := start(t)
	tc.setup(t)
	md := func(uri string) metadatapb.MetadataClient { return metadatapb.NewMetadataClient(tc.conn(t, uri)) }
	ca := func(uri string) clusterpb.ClusterAdminClient { return clusterpb.NewClusterAdminClient(tc.conn(t, uri)) }
	fe, node, acme := md("strata://frontend/fe-1"), md("strata://node/meta-2"), md("strata://admin/tenant/acme")

	_, err := fe.CreateTenant(ctx(t), &metadatapb.CreateTenantRequest{RequestId: reqID(), Name: "x", Domains: []string{"x.org"}})
	wantCode(t, "frontend CreateTenant", err, codes.PermissionDenied)
	_, err = fe.CreateAccount(ctx(t), &metadatapb.CreateAccountRequest{RequestId: reqID(), Email: "w@acme.org", Password: "x"})
	wantCode(t, "frontend CreateAccount", err, codes.PermissionDenied)
	_, err = fe.Authenticate(ctx(t), &metadatapb.AuthenticateRequest{Email: "u@acme.org", Password: "pw-acme"})
	wantCode(t, "frontend Authenticate", err, codes.OK)
	_, err = fe.GetMailbox(ctx(t), &metadatapb.GetMailboxRequest{Account: "v@other.org", Name: "INBOX", User: "v@other.org"})
	wantCode(t, "frontend GetMailbox", err, codes.OK)

	// An import may set UIDs and UIDVALIDITY: administrators only (strata migrate).
	_, err = fe.ImportMessages(ctx(t), &metadatapb.ImportMessagesRequest{RequestId: reqID(), Account: "u@acme.org", MailboxId: 1, UidValidity: 7})
	wantCode(t, "frontend ImportMessages", err, codes.PermissionDenied)

	// SCRAM keys go to frontends only; app passwords are managed by admins only.
	_, err = fe.GetScramCredentials(ctx(t), &metadatapb.GetScramCredentialsRequest{Email: "u@acme.org", Hash: "SHA-256"})
	if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
		t.Errorf("frontend GetScramCredentials: %v", err)
	}
	_, err = acme.GetScramCredentials(ctx(t), &metadatapb.GetScramCredentialsRequest{Email: "u@acme.org", Hash: "SHA-256"})
	wantCode(t, "tenant admin GetScramCredentials", err, codes.PermissionDenied)
	_, err = fe.AddAppPassword(ctx(t), &metadatapb.AddAppPasswordRequest{RequestId: reqID(), Email: "u@acme.org", Name: "phone", Scopes: []string{"imap"}})
	wantCode(t, "frontend AddAppPassword", err, codes.PermissionDenied)
	_, err = fe.ListAppPasswords(ctx(t), &metadatapb.ListAppPasswordsRequest{Email: "u@acme.org"})
	wantCode(t, "frontend ListAppPasswords", err, codes.PermissionDenied)
	added, err := acme.AddAppPassword(ctx(t), &metadatapb.AddAppPasswordRequest{RequestId: reqID(), Email: "u@acme.org", Name: "phone", Scopes: []string{"imap"}})
	if err != nil || added.GetPassword() == "" {
		t.Errorf("tenant admin AddAppPassword of its own user: %v, %v", added, err)
	}
	listed, err := acme.ListAppPasswords(ctx(t), &metadatapb.ListAppPasswordsRequest{Email: "u@acme.org"})
	if err != nil || len(listed.GetAppPasswords()) != 1 {
		t.Errorf("tenant admin ListAppPasswords of its own user: %v, %v", listed, err)
	}
	_, err = acme.RevokeAppPassword(ctx(t), &metadatapb.RevokeAppPasswordRequest{RequestId: reqID(), Email: "u@acme.org", IdOrName: "phone"})
	wantCode(t, "tenant admin RevokeAppPassword of its own user", err, codes.OK)

	_, err = node.ListTenants(ctx(t), &metadatapb.ListTenantsRequest{})
	wantCode(t, "node ListTenants", err, codes.PermissionDenied)
	_, err = ca("strata://node/meta-2").Status(ctx(t), &clusterpb.StatusRequest{})
	wantCode(t, "node Status", err, codes.OK)
	_, err = ca("strata://frontend/fe-1").Status(ctx(t), &clusterpb.StatusRequest{})
	wantCode(t, "frontend Status", err, codes.PermissionDenied)

	_, err = acme.CreateTenant(ctx(t), &metadatapb.CreateTenantRequest{RequestId: reqID(), Name: "x", Domains: []string{"x.org"}})
	wantCode(t, "tenant admin CreateTenant", err, codes.PermissionDenied)
	_, err = acme.DeleteTenant(ctx(t), &metadatapb.DeleteTenantRequest{RequestId: reqID(), Name: "acme"})
	wantCode(t, "tenant admin DeleteTenant", err, codes.PermissionDenied)
	_, err = acme.ListTenants(ctx(t), &metadatapb.ListTenantsRequest{})
	wantCode(t, "tenant admin ListTenants", err, codes.PermissionDenied)
	_, err = acme.Authenticate(ctx(t), &metadatapb.AuthenticateRequest{Email: "u@acme.org", Password: "pw-acme"})
	wantCode(t, "tenant admin Authenticate", err, codes.PermissionDenied)
	_, err = acme.SetDeliverySettings(ctx(t), &metadatapb.SetDeliverySettingsRequest{RequestId: reqID(), Tenant: "acme", Settings: &metadatapb.DeliverySettings{}})
	wantCode(t, "tenant admin SetDeliverySettings", err, codes.PermissionDenied)
	_, err = ca("strata://admin/tenant/acme").Remove(ctx(t), &clusterpb.RemoveRequest{Id: "meta-1"})
	wantCode(t, "tenant admin Remove", err, codes.PermissionDenied)
	_, err = ca("strata://admin/tenant/acme").Status(ctx(t), &clusterpb.StatusRequest{})
	wantCode(t, "tenant admin Status", err, codes.PermissionDenied)

	fw := metadatapb.NewMetadataClient(tc.conn(t, "strata://frontend/fe-1"))
	stream, err := fw.FetchMessages(ctx(t), &metadatapb.FetchMessagesRequest{Account: "u@acme.org"})
	if err == nil {
		_, err = stream.Recv()
	}
	if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
		t.Errorf("frontend FetchMessages: %v", err)
	}
	stream, err = acme.FetchMessages(ctx(t), &metadatapb.FetchMessagesRequest{Account: "u@acme.org"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, "tenant admin FetchMessages", err, codes.PermissionDenied)

	_, err = ca("strata://admin/cluster").Status(ctx(t), &clusterpb.StatusRequest{})
	wantCode(t, "cluster admin Status", err, codes.OK)
	_, err = md("strata://admin/cluster").ListTenants(ctx(t), &metadatapb.ListTenantsRequest{})
	wantCode(t, "cluster admin ListTenants", err, codes.OK)
}

// TestIdentityRequired: over TLS a call needs a certificate from the cluster CA or an
// admin token; plaintext is trusted only where AllowPlaintext says so.
func TestIdentityRequired(t *testing.T) {
	tc := start(t)
	list := func(conn *grpc.ClientConn) error {
		_, err := metadatapb.NewMetadataClient(conn).ListTenants(ctx(t), &metadatapb.ListTenantsRequest{})
		return err
	}
	wantCode(t, "no certificate", list(tc.conn(t, "")), codes.Unauthenticated)
	noURI := tc.ca.Issue(t, identitytest.Leaf{})
	wantCode(t, "certificate without URI SAN", list(dial(t, tc.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc.ca.ClientTLS(noURI))))), codes.Unauthenticated)
	two := tc.ca.Issue(t, identitytest.Leaf{URIs: []string{"strata://node/a", "strata://admin/cluster"}})
	wantCode(t, "certificate with two URI SANs", list(dial(t, tc.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc.ca.ClientTLS(two))))), codes.Unauthenticated)

	// A certificate the server does not trust ends the handshake: no call is made.
	foreign := identitytest.NewCA(t).Issue(t, identitytest.Leaf{URIs: []string{"strata://admin/cluster"}})
	wantCode(t, "certificate from another CA", list(dial(t, tc.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc.ca.ClientTLS(foreign))))), codes.Unavailable)
	expired := tc.ca.Issue(t, identitytest.Leaf{URIs: []string{"strata://admin/cluster"}, NotAfter: time.Now().Add(-time.Minute)})
	wantCode(t, "expired certificate", list(dial(t, tc.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc.ca.ClientTLS(expired))))), codes.Unavailable)
	wantCode(t, "plaintext client to the TLS server", list(dial(t, tc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))), codes.Unavailable)

	cluster := identity.Identity{Kind: identity.ClusterAdmin}
	withToken := func(token string) *grpc.ClientConn {
		return tc.conn(t, "", grpc.WithPerRPCCredentials(identity.TokenCredentials{Token: token}))
	}
	wantCode(t, "cluster admin token", list(withToken(tc.token(t, cluster, time.Hour))), codes.OK)
	wantCode(t, "tenant admin token", list(withToken(tc.token(t, identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}, time.Hour))), codes.PermissionDenied)
	stale, _, err := identity.IssueToken(tc.tokenKey, cluster, time.Second, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "expired token", list(withToken(stale)), codes.Unauthenticated)
	otherKey, _ := identity.GenerateTokenKey()
	forged, _, _ := identity.IssueToken(otherKey, cluster, time.Hour, time.Now())
	wantCode(t, "token of an unknown key", list(withToken(forged)), codes.Unauthenticated)
	wantCode(t, "garbage token", list(withToken("strata-admin-v1.xx.yy")), codes.Unauthenticated)
	both := tc.conn(t, "strata://admin/cluster", grpc.WithPerRPCCredentials(identity.TokenCredentials{Token: tc.token(t, cluster, time.Hour)}))
	wantCode(t, "certificate and token", list(both), codes.Unauthenticated)

	// The client refuses to send a bearer token over plaintext.
	if conn, err := grpc.NewClient(tc.plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(identity.TokenCredentials{Token: "x"})); err == nil {
		conn.Close()
		t.Error("a token was sent over plaintext")
	}
	wantCode(t, "plaintext where allowed", list(dial(t, tc.plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))), codes.OK)
	wantCode(t, "plaintext where not allowed", list(dial(t, tc.strict, grpc.WithTransportCredentials(insecure.NewCredentials()))), codes.Unauthenticated)
}

// TestAuditLog: admin calls are logged with who, what, target, result and peer, refused
// calls too, and no password or token ever reaches the log.
func TestAuditLog(t *testing.T) {
	tc := start(t)
	tc.setup(t)
	const password = "Tr0ub4dor&3-secret"
	token := tc.token(t, identity.Identity{Kind: identity.TenantAdmin, Tenant: "acme"}, time.Hour)
	c := metadatapb.NewMetadataClient(tc.conn(t, "", grpc.WithPerRPCCredentials(identity.TokenCredentials{Token: token})))
	if _, err := c.CreateAccount(ctx(t), &metadatapb.CreateAccountRequest{RequestId: reqID(), Email: "new@acme.org", Password: password}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPassword(ctx(t), &metadatapb.SetPasswordRequest{RequestId: reqID(), Email: "new@acme.org", Password: password + "2"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SetPassword(ctx(t), &metadatapb.SetPasswordRequest{RequestId: reqID(), Email: "v@other.org", Password: password})
	wantCode(t, "SetPassword in another tenant", err, codes.PermissionDenied)
	_, err = c.DeleteAccount(ctx(t), &metadatapb.DeleteAccountRequest{RequestId: reqID(), Email: strings.Repeat("x", 100_000) + "@other.org"})
	wantCode(t, "DeleteAccount of a huge address", err, codes.PermissionDenied)
	if n := len(tc.audit.String()); n > 20_000 {
		t.Errorf("a huge address made the audit log %d bytes long", n)
	}
	fe := metadatapb.NewMetadataClient(tc.conn(t, "strata://frontend/fe-1"))
	if _, err := fe.Authenticate(ctx(t), &metadatapb.AuthenticateRequest{Email: "new@acme.org", Password: password + "2"}); err != nil {
		t.Fatal(err)
	}
	plain := metadatapb.NewMetadataClient(dial(t, tc.plainAddr, grpc.WithTransportCredentials(insecure.NewCredentials())))
	if _, err := plain.GetAccount(ctx(t), &metadatapb.GetAccountRequest{Email: "new@acme.org"}); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ListAccounts(ctx(t), &metadatapb.ListAccountsRequest{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}

	log := tc.audit.String()
	for _, secret := range []string{password, token, token[strings.LastIndexByte(token, '.')+1:], "pw-acme", "pw-other"} {
		if strings.Contains(log, secret) {
			t.Errorf("the audit log contains a secret %q:\n%s", secret, log)
		}
	}
	var created, denied, plainRead bool
	for _, ev := range tc.audit.events(t) {
		target, _ := ev["target"].(map[string]any)
		switch {
		case ev["rpc"] == "Metadata/CreateAccount" && ev["who"] == "strata://admin/tenant/acme":
			created = true
			if ev["via"] != "token" || ev["token_id"] == "" || ev["result"] != "OK" || target["email"] != "new@acme.org" ||
				!strings.HasPrefix(ev["peer"].(string), "127.0.0.1:") || ev["time"] == nil || ev["level"] != "INFO" {
				t.Errorf("CreateAccount event: %v", ev)
			}
		case ev["rpc"] == "Metadata/SetPassword" && ev["result"] == "PermissionDenied":
			denied = true
			if ev["level"] != "WARN" || target["email"] != "v@other.org" || ev["reason"] == "" {
				t.Errorf("refused SetPassword event: %v", ev)
			}
		case ev["rpc"] == "Metadata/ListAccounts" && ev["who"] == "plaintext":
			plainRead = true
			if target["tenant"] != "acme" {
				t.Errorf("plaintext ListAccounts event: %v", ev)
			}
		case ev["rpc"] == "Metadata/Authenticate", ev["rpc"] == "Metadata/GetAccount":
			t.Errorf("a data-plane call was audited: %v", ev)
		}
	}
	if !created || !denied || !plainRead {
		t.Errorf("audit events missing (created %v, denied %v, plaintext read %v):\n%s", created, denied, plainRead, log)
	}
}

// TestDocumentedTable: docs/admin-authorization.md lists the table as it is.
func TestDocumentedTable(t *testing.T) {
	doc := readFile(t, "../../docs/admin-authorization.md")
	if !strings.Contains(doc, authz.Describe()) {
		t.Errorf("docs/admin-authorization.md does not hold the current table; it is:\n%s", authz.Describe())
	}
}
