// Package authz authorizes the calls of the metadata and cluster admin gRPC services and
// writes the audit log of administrative calls. It is a pair of gRPC interceptors
// (Authorizer.ServerOptions) in front of the services; who may call what is the table in
// rules.go.
//
// Invariants:
//
//   - Deny by default: an RPC without a row in the table, a caller whose kind the row does
//     not list, and a tenant administrator whose request names anything outside its tenant
//     (or nothing at all) get PermissionDenied; a caller without a valid identity gets
//     Unauthenticated. The handler never runs for them.
//   - Identity (internal/identity) is the verified client certificate's URI SAN, or a
//     signed admin token in the "authorization" header; never both.
//   - A connection without TLS is trusted with every call only when the server was built
//     with AllowPlaintext: the explicitly asked-for plaintext mode of a cluster, and
//     `strata serve`'s loopback-only admin endpoint. Such a caller is an admin as before
//     authorization existed, and is logged as "plaintext". Over TLS an identity is always
//     required. A token given on a plaintext connection is still honoured (it can only
//     narrow what the caller may do).
//   - The audit log records who, what RPC, the target (the request fields the row names:
//     accounts, addresses, tenants, domains), the result code, the peer address and the
//     time, for every call by an administrator, every call of a row marked audit, every
//     plaintext call of a row frontends cannot call, and every refused call. It never records a request's other fields (passwords, Sieve
//     scripts, message data) nor a token (only its jti).
package authz

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-mail/strata/internal/identity"
)

// Tenancy answers which tenant the names in a request belong to; the metadata service
// implements it (metadata.Service.OwnerTenant, DomainTenant) with its own normalisation.
type Tenancy interface {
	// OwnerTenant: an account, an alias address or a mailbox owner ("tenant:NAME").
	OwnerTenant(owner string) (tenant string, found bool, err error)
	DomainTenant(domain string) (tenant string, found bool, err error)
}

// Config configures an Authorizer.
type Config struct {
	// Tenancy scopes tenant administrators; without it they are refused everything.
	Tenancy Tenancy
	// Tokens verifies admin tokens; nil refuses them.
	Tokens *identity.Verifier
	// AllowPlaintext trusts callers on connections without TLS (see the package doc).
	AllowPlaintext bool
	// Audit receives the audit events; slog.Default() when nil.
	Audit *slog.Logger
}

// Authorizer holds the interceptors of one gRPC server.
type Authorizer struct {
	cfg Config
}

// New returns an Authorizer.
func New(cfg Config) *Authorizer {
	if cfg.Audit == nil {
		cfg.Audit = slog.Default()
	}
	return &Authorizer{cfg: cfg}
}

// ServerOptions returns the interceptors to install on the gRPC server. Put them first, so
// that nothing else runs for a refused call.
func (a *Authorizer) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream)}
}

// caller is who made a call.
type caller struct {
	id identity.Identity
	// via is "certificate", "token" or "plaintext" (a trusted caller without identity).
	via     string
	tokenID string
	addr    string
}

func (c caller) trusted() bool { return c.via == "plaintext" }

func (c caller) who() string {
	if c.trusted() {
		return "plaintext"
	}
	return c.id.URI()
}

// identify finds the caller of ctx, or refuses it with Unauthenticated.
func (a *Authorizer) identify(ctx context.Context) (caller, error) {
	var c caller
	p, ok := peer.FromContext(ctx)
	if !ok {
		return c, status.Error(codes.Unauthenticated, "no peer")
	}
	if p.Addr != nil {
		c.addr = p.Addr.String()
	}
	var token string
	if md, ok := grpcmd.FromIncomingContext(ctx); ok {
		values := md.Get(identity.TokenHeader)
		if len(values) > 1 {
			return c, status.Error(codes.Unauthenticated, "more than one authorization header")
		}
		if len(values) == 1 {
			var isBearer bool
			if token, isBearer = strings.CutPrefix(values[0], "Bearer "); !isBearer {
				return c, status.Error(codes.Unauthenticated, "authorization header: not a Bearer token")
			}
		}
	}
	tlsInfo, isTLS := p.AuthInfo.(credentials.TLSInfo)
	var cert *x509.Certificate
	if isTLS {
		if len(tlsInfo.State.VerifiedChains) > 0 && len(tlsInfo.State.VerifiedChains[0]) > 0 {
			cert = tlsInfo.State.VerifiedChains[0][0]
		} else if len(tlsInfo.State.PeerCertificates) > 0 {
			return c, status.Error(codes.Unauthenticated, "client certificate not verified against the cluster CA")
		}
	}
	switch {
	case !isTLS && !a.cfg.AllowPlaintext:
		return c, status.Error(codes.Unauthenticated, "plaintext connection refused: this server requires TLS")
	case cert != nil && token != "":
		return c, status.Error(codes.Unauthenticated, "a client certificate and an admin token: send one")
	case cert != nil:
		id, err := identity.FromCertificate(cert)
		if err != nil {
			return c, status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
		}
		c.id, c.via = id, "certificate"
	case token != "":
		if a.cfg.Tokens == nil {
			return c, status.Error(codes.Unauthenticated, "admin tokens are not accepted by this server")
		}
		id, claims, err := a.cfg.Tokens.Verify(token)
		if err != nil {
			return c, status.Errorf(codes.Unauthenticated, "%v", err)
		}
		c.id, c.via, c.tokenID = id, "token", claims.ID
	case !isTLS:
		c.via = "plaintext"
	default:
		return c, status.Error(codes.Unauthenticated, "identity required: a client certificate from the cluster CA or an admin token")
	}
	return c, nil
}

// authorize decides one call; req is nil for a stream (streams have no tenant-scoped row:
// TestStreamsAreNotTenantScoped).
func (a *Authorizer) authorize(c caller, method string, req proto.Message) error {
	row, known := rules[method]
	switch {
	case !known:
		return status.Errorf(codes.PermissionDenied, "%s has no authorization rule", method)
	case c.trusted():
		return nil
	case c.id.Kind&row.callers == 0:
		return status.Errorf(codes.PermissionDenied, "%s may not call %s", c.id.Kind, shortName(method))
	case c.id.Kind == identity.TenantAdmin:
		return a.scopeTenant(c.id.Tenant, row, req)
	}
	return nil
}

// scopeTenant checks that every name the request gives in the row's fields is tenant's,
// that it gives one at least, and that it sets no cluster-only field.
func (a *Authorizer) scopeTenant(tenant string, row rule, req proto.Message) error {
	if req == nil || a.cfg.Tenancy == nil {
		return status.Error(codes.PermissionDenied, "not a call a tenant administrator can make here")
	}
	m := req.ProtoReflect()
	for _, f := range row.clusterOnly {
		if len(fieldValues(m, f)) > 0 {
			return status.Errorf(codes.PermissionDenied, "only the cluster administrator may set %s", f)
		}
	}
	named := 0
	check := func(fields []string, lookup func(string) (string, bool, error)) error {
		for _, f := range fields {
			for _, v := range fieldValues(m, f) {
				named++
				owner, found, err := lookup(v)
				if err != nil {
					return status.Errorf(codes.Unavailable, "look up the tenant of %s: %v", f, err)
				}
				if !found || owner != tenant {
					return status.Errorf(codes.PermissionDenied, "%s %q is not in tenant %s", f, clip(v), tenant)
				}
			}
		}
		return nil
	}
	sameTenant := func(t string) (string, bool, error) { return t, true, nil }
	if err := check(row.owners, a.cfg.Tenancy.OwnerTenant); err != nil {
		return err
	}
	if err := check(row.tenants, sameTenant); err != nil {
		return err
	}
	if err := check(row.domains, a.cfg.Tenancy.DomainTenant); err != nil {
		return err
	}
	if named == 0 {
		return status.Errorf(codes.PermissionDenied, "a tenant administrator must name an account or the tenant %s", tenant)
	}
	return nil
}

// fieldValues returns the non-empty values of a string (or repeated string) field.
func fieldValues(m protoreflect.Message, name string) []string {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return nil
	}
	if fd.IsList() {
		list := m.Get(fd).List()
		out := make([]string, 0, list.Len())
		for i := range list.Len() {
			if s := list.Get(i).String(); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if s := m.Get(fd).String(); s != "" {
		return []string{s}
	}
	return nil
}

func (a *Authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	msg, _ := req.(proto.Message)
	c, err := a.identify(ctx)
	if err == nil {
		err = a.authorize(c, info.FullMethod, msg)
	}
	if err != nil {
		a.record(ctx, c, info.FullMethod, msg, err, start)
		return nil, err
	}
	resp, err := handler(ctx, req)
	if audited(c, info.FullMethod) {
		a.record(ctx, c, info.FullMethod, msg, err, start)
	}
	return resp, err
}

func (a *Authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx := ss.Context()
	c, err := a.identify(ctx)
	if err == nil {
		err = a.authorize(c, info.FullMethod, nil)
	}
	if err != nil {
		a.record(ctx, c, info.FullMethod, nil, err, start)
		return err
	}
	err = handler(srv, ss)
	if audited(c, info.FullMethod) {
		a.record(ctx, c, info.FullMethod, nil, err, start)
	}
	return err
}

// audited reports whether an allowed call is logged: a row marked audit, any call by an
// administrator, and a plaintext caller's call of a row frontends cannot make (a plaintext
// caller may be a frontend, whose data-plane calls are not admin calls).
func audited(c caller, method string) bool {
	row := rules[method]
	return row.audit || c.id.IsAdmin() || c.trusted() && row.callers&identity.Frontend == 0
}

// record writes one audit event.
func (a *Authorizer) record(ctx context.Context, c caller, method string, req proto.Message, err error, start time.Time) {
	who := c.who()
	if who == "" {
		who = "unknown"
	}
	attrs := []slog.Attr{
		slog.String("who", who),
		slog.String("rpc", shortName(method)),
		slog.String("peer", c.addr),
		slog.String("result", status.Code(err).String()),
		slog.Duration("duration", time.Since(start)),
	}
	if c.via != "" {
		attrs = append(attrs, slog.String("via", c.via))
	}
	if c.tokenID != "" {
		attrs = append(attrs, slog.String("token_id", c.tokenID))
	}
	if target := targetAttrs(method, req); len(target) > 0 {
		attrs = append(attrs, slog.Attr{Key: "target", Value: slog.GroupValue(target...)})
	}
	level := slog.LevelInfo
	if code := status.Code(err); code == codes.PermissionDenied || code == codes.Unauthenticated {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("reason", status.Convert(err).Message()))
	}
	a.cfg.Audit.LogAttrs(ctx, level, "admin call", attrs...)
}

// targetAttrs are the names the request's row lists, field by field.
func targetAttrs(method string, req proto.Message) []slog.Attr {
	if req == nil {
		return nil
	}
	row := rules[method]
	m := req.ProtoReflect()
	var out []slog.Attr
	for _, fields := range [][]string{row.owners, row.tenants, row.domains, row.clusterOnly} {
		for _, f := range fields {
			if v := fieldValues(m, f); len(v) > 0 {
				out = append(out, slog.String(f, clip(strings.Join(v, ","))))
			}
		}
	}
	return out
}

// maxLoggedValue bounds what the audit log and a refusal repeat of a request's field.
const maxLoggedValue = 512

// clip shortens s to maxLoggedValue bytes (on a rune boundary) and marks the cut.
func clip(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	cut := maxLoggedValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// shortName is "Service/Method" of a full method name "/pkg.Service/Method".
func shortName(method string) string {
	if i := strings.LastIndexByte(method, '.'); i >= 0 {
		return method[i+1:]
	}
	return strings.TrimPrefix(method, "/")
}

// Describe returns the table as Markdown, for docs/admin-authorization.md (checked by
// TestDocumentedTable).
func Describe() string {
	var b strings.Builder
	b.WriteString("| RPC | callers | a tenant admin's request must name its tenant's | audited |\n|---|---|---|---|\n")
	for _, m := range sortedMethods() {
		r := rules[m]
		var who []string
		for _, k := range []identity.Kind{identity.Node, identity.Frontend, identity.ClusterAdmin, identity.TenantAdmin} {
			if r.callers&k != 0 {
				who = append(who, k.String())
			}
		}
		scope := ""
		if r.callers&identity.TenantAdmin != 0 {
			scope = strings.Join(slices.Concat(r.owners, r.tenants, r.domains), ", ")
			if len(r.clusterOnly) > 0 {
				scope += "; may not set " + strings.Join(r.clusterOnly, ", ")
			}
		}
		audited := ""
		if r.audit {
			audited = "always"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", shortName(m), strings.Join(who, ", "), scope, audited)
	}
	return b.String()
}

func sortedMethods() []string { return slices.Sorted(maps.Keys(rules)) }
