// Package identity says who is calling Strata's internal gRPC APIs: a metadata node, a
// frontend, the cluster administrator or the administrator of one tenant. An identity comes
// from the caller's client certificate or from a signed admin token (token.go); package
// authz decides what each identity may do.
//
// Invariants:
//
//   - A certificate names its holder in exactly one URI SAN (agreed with `strata cert issue`):
//     strata://node/<name>, strata://frontend/<name>, strata://admin/cluster or
//     strata://admin/tenant/<tenant>. A certificate with none, several, or one of another
//     form has no identity: it is refused, never guessed at.
//   - Only a certificate from a verified chain counts (FromPeer reads
//     credentials.TLSInfo.State.VerifiedChains, never the unverified PeerCertificates).
//   - A token only ever names an administrator; nodes and frontends need a certificate.
//   - Nothing here logs or returns a token or a key: errors name what is wrong, not the
//     secret.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is what an identity is.
type Kind uint8

const (
	// Node is a metadata node (Raft member).
	Node Kind = 1 << iota
	// Frontend is an IMAP/LMTP/ManageSieve frontend acting for the users it serves.
	Frontend
	// ClusterAdmin administers the whole cluster.
	ClusterAdmin
	// TenantAdmin administers one tenant (Identity.Tenant).
	TenantAdmin
)

// String names a kind as its URI does.
func (k Kind) String() string {
	switch k {
	case Node:
		return "node"
	case Frontend:
		return "frontend"
	case ClusterAdmin:
		return "cluster-admin"
	case TenantAdmin:
		return "tenant-admin"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Scheme is the URI scheme of Strata identities.
const Scheme = "strata"

// maxNameLen bounds a node, frontend or tenant name in an identity.
const maxNameLen = 128

// Identity is one caller.
type Identity struct {
	Kind Kind
	// Name is the node's or frontend's name; empty for administrators.
	Name string
	// Tenant is the tenant a TenantAdmin administers; empty otherwise.
	Tenant string
}

// URI is the identity's canonical URI (the SAN its certificate carries).
func (id Identity) URI() string {
	switch id.Kind {
	case Node:
		return "strata://node/" + id.Name
	case Frontend:
		return "strata://frontend/" + id.Name
	case ClusterAdmin:
		return "strata://admin/cluster"
	case TenantAdmin:
		return "strata://admin/tenant/" + id.Tenant
	}
	return ""
}

// String is URI, for logs.
func (id Identity) String() string { return id.URI() }

// IsAdmin reports whether the identity is an administrator of any kind.
func (id Identity) IsAdmin() bool { return id.Kind == ClusterAdmin || id.Kind == TenantAdmin }

// ParseURI parses an identity URI. The form is strict: scheme strata, an opaque-free
// authority naming the kind, one path segment for a name (two for a tenant admin), no
// query, fragment, user info or port, and names of printable characters without "/".
func ParseURI(u *url.URL) (Identity, error) {
	if u == nil {
		return Identity{}, errors.New("no identity URI")
	}
	if u.Scheme != Scheme || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Port() != "" {
		return Identity{}, fmt.Errorf("identity URI %q is not of the form strata://KIND/NAME", u.String())
	}
	if u.RawPath != "" {
		return Identity{}, fmt.Errorf("identity URI %q: escaped path", u.String())
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	var id Identity
	switch {
	case u.Host == "node" && len(segs) == 1:
		id = Identity{Kind: Node, Name: segs[0]}
	case u.Host == "frontend" && len(segs) == 1:
		id = Identity{Kind: Frontend, Name: segs[0]}
	case u.Host == "admin" && len(segs) == 1 && segs[0] == "cluster":
		return Identity{Kind: ClusterAdmin}, nil
	case u.Host == "admin" && len(segs) == 2 && segs[0] == "tenant":
		id = Identity{Kind: TenantAdmin, Tenant: segs[1]}
	default:
		return Identity{}, fmt.Errorf("identity URI %q names no known kind (node, frontend, admin/cluster, admin/tenant/T)", u.String())
	}
	if err := checkName(id.Name + id.Tenant); err != nil {
		return Identity{}, fmt.Errorf("identity URI %q: %w", u.String(), err)
	}
	return id, nil
}

// Parse parses an identity URI given as a string.
func Parse(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Identity{}, fmt.Errorf("identity URI: %w", err)
	}
	return ParseURI(u)
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must have 1 to %d bytes", maxNameLen)
	}
	for _, r := range name {
		if r <= 0x20 || r == 0x7f || r == '/' || r == '%' {
			return fmt.Errorf("name has a forbidden character %q", r)
		}
	}
	return nil
}

// FromCertificate returns the identity a certificate's single URI SAN names. The caller
// must have verified the certificate's chain to the cluster CA.
func FromCertificate(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, errors.New("no certificate")
	}
	switch len(cert.URIs) {
	case 0:
		return Identity{}, errors.New("certificate has no strata:// URI SAN")
	case 1:
		return ParseURI(cert.URIs[0])
	default:
		return Identity{}, fmt.Errorf("certificate has %d URI SANs; a Strata certificate has exactly one", len(cert.URIs))
	}
}
