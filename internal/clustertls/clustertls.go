// Package clustertls is the mutual TLS of the traffic inside a Strata cluster: the metadata
// and cluster admin gRPC APIs, the Raft transport between metadata nodes, frontends and the
// admin CLI calling metadata nodes. It loads the cluster CA, this process's certificate and
// key and an optional CRL from PEM files, builds the TLS configurations of both ends, and
// reloads the files on demand (SIGHUP). issue.go makes the CA and the certificates (`strata
// cert`).
//
// Invariants:
//
//   - Both ends present a certificate and both verify the other's: a peer whose certificate
//     does not chain to the cluster CA, is outside its validity period, is listed in the CRL,
//     is absent, or lacks the extended key usage of its side of the handshake (RFC 5280
//     4.2.1.12: serverAuth for the end that accepts, clientAuth for the end that dials) is
//     refused during the handshake, before any RPC or Raft message is read.
//   - Every certificate the cluster CA issues carries exactly one URI SAN, the identity
//     (Identity* below); a peer certificate without exactly one strata:// URI is refused.
//     Who may call what is decided from that identity by the services, not here. Host names
//     are not checked: the address a node is dialled at (etcd's registry, a proxy, a
//     Kubernetes service) says nothing a CA-issued identity does not; a client instead
//     requires the server it dials to hold a node identity, so a frontend or admin
//     certificate cannot stand in for a metadata node.
//   - Reload replaces the CA pool, the key pair and the CRL together or not at all; a handshake
//     uses one consistent set. Connections already established keep theirs.
//   - TLS 1.3 only: every end is Strata itself.
package clustertls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// The identities certificates carry as their one URI SAN (agreed with admin authorization).
const (
	Scheme                    = "strata"
	IdentityNodePrefix        = "strata://node/"
	IdentityFrontendPrefix    = "strata://frontend/"
	IdentityClusterAdmin      = "strata://admin/cluster"
	IdentityTenantAdminPrefix = "strata://admin/tenant/"
)

// Files names the PEM files of a cluster TLS identity. CRL is optional.
type Files struct {
	CA   string // the cluster CA certificate(s)
	Cert string // this process's certificate chain
	Key  string // its private key
	CRL  string // certificates the CA revoked; "" for none
}

// material is one consistent set read from Files.
type material struct {
	cert    *tls.Certificate
	roots   *x509.CertPool
	revoked map[string]bool // serial numbers (big.Int.String) the CRL lists
}

// Identity is a process's cluster TLS identity and trust: what it presents and what it
// accepts. Its configurations read the current material at every handshake, so Reload
// takes effect for new connections without rebuilding servers or clients.
type Identity struct {
	files   Files
	current atomic.Pointer[material]
	refused atomic.Pointer[func(error)]
}

// OnRefuse makes fn hear why each peer a server end refused (a log line: a handshake
// refusal is otherwise seen by the peer only, as a TLS alert).
func (id *Identity) OnRefuse(fn func(error)) { id.refused.Store(&fn) }

// Load reads files; every one must parse, the key must match the certificate, and the CRL
// must be signed by the CA.
func Load(files Files) (*Identity, error) {
	if files.CA == "" || files.Cert == "" || files.Key == "" {
		return nil, errors.New("cluster TLS needs a CA file, a certificate file and a key file")
	}
	id := &Identity{files: files}
	if err := id.Reload(); err != nil {
		return nil, err
	}
	return id, nil
}

// Reload reads the files again and, when all of them load, makes them the set new
// handshakes use. On error the previous set stays in use.
func (id *Identity) Reload() error {
	m, err := loadMaterial(id.files)
	if err != nil {
		return err
	}
	id.current.Store(m)
	return nil
}

// ReloadTLS is Reload under the name cmd/strata's SIGHUP handler calls.
func (id *Identity) ReloadTLS() error { return id.Reload() }

// TLSCertFile is the certificate file this identity presents.
func (id *Identity) TLSCertFile() string { return id.files.Cert }

func loadMaterial(f Files) (*material, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	cas, err := parseCertificates(caPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA %s: %w", f.CA, err)
	}
	roots := x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load cluster TLS certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	m := &material{cert: &cert, roots: roots, revoked: map[string]bool{}}
	if f.CRL != "" {
		if m.revoked, err = loadCRL(f.CRL, cas); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// parseCertificates reads every CERTIFICATE block of a PEM file; there must be one.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// loadCRL reads a PEM (or DER) CRL that one of cas signed (RFC 5280 6.3.3 (f)) and returns
// the serial numbers it revokes.
func loadCRL(path string, cas []*x509.Certificate) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CRL: %w", err)
	}
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("CRL %s: PEM block %q, want X509 CRL", path, block.Type)
		}
		data = block.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", path, err)
	}
	var signed bool
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			signed = true
			break
		}
	}
	if !signed {
		return nil, fmt.Errorf("CRL %s is not signed by the cluster CA", path)
	}
	revoked := make(map[string]bool, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		revoked[e.SerialNumber.String()] = true
	}
	return revoked, nil
}

// verifyChains verifies a peer's certificate chain against m's CA pool for usage, now
// (RFC 5280 6.1, including the validity period of every certificate).
func verifyChains(m *material, raw [][]byte, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, errors.New("cluster TLS: the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS: peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: m.roots, Intermediates: inter, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster TLS: peer certificate %q: %w", certs[0].Subject.CommonName, err)
	}
	return chains, nil
}

// identityOf returns the one strata:// URI SAN of c.
func identityOf(c *x509.Certificate) (string, error) {
	if len(c.URIs) != 1 || c.URIs[0].Scheme != Scheme {
		return "", fmt.Errorf("cluster TLS: peer certificate %q must carry exactly one %s:// URI SAN, has %d URIs", c.Subject.CommonName, Scheme, len(c.URIs))
	}
	return c.URIs[0].String(), nil
}

// ServerConfig is the configuration of the accepting end (gRPC server, Raft listener): it
// presents the current certificate and requires a client certificate that crypto/tls
// verifies against the current CA pool for clientAuth (RFC 5280 6.1: chain and validity),
// so that the connection state's VerifiedChains hold it (what admin authorization reads);
// the CRL and the URI SAN are checked after. requirePrefix, when not "", is the identity
// prefix the client's URI must have (the Raft transport accepts only nodes).
func (id *Identity) ServerConfig(requirePrefix string) *tls.Config {
	return id.serverConfig(requirePrefix, nil)
}

func (id *Identity) serverConfig(requirePrefix string, nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		// One configuration per handshake, from the material current at its start.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := id.current.Load()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    m.roots,
				VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
					return checkVerified(m, chains, requirePrefix)
				},
			}, nil
		},
	}
}

// checkVerified checks verified chains: no certificate in them is revoked (RFC 5280 6.3),
// and the leaf carries one strata:// URI starting with requirePrefix.
func checkVerified(m *material, chains [][]*x509.Certificate, requirePrefix string) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return errors.New("cluster TLS: no verified peer certificate")
	}
	for _, chain := range chains {
		for _, c := range chain {
			if m.revoked[c.SerialNumber.String()] {
				return fmt.Errorf("cluster TLS: peer certificate %q (serial %s) is revoked", c.Subject.CommonName, c.SerialNumber)
			}
		}
	}
	uri, err := identityOf(chains[0][0])
	if err != nil {
		return err
	}
	if requirePrefix != "" && !strings.HasPrefix(uri, requirePrefix) {
		return fmt.Errorf("cluster TLS: peer %s is not a %s* identity", uri, requirePrefix)
	}
	return nil
}

// ClientConfig is the configuration of the dialling end: it presents the current
// certificate and requires the server's to be valid for serverAuth and to name a node.
func (id *Identity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is checked in VerifyPeerCertificate against the roots current at this
		// handshake (crypto/tls documents this pattern for custom verification); host names
		// are not checked (package doc).
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.current.Load().cert, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			m := id.current.Load()
			chains, err := verifyChains(m, raw, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			return checkVerified(m, chains, IdentityNodePrefix)
		},
	}
}

// Refused reports err, a refused peer, to the OnRefuse function.
func (id *Identity) Refused(err error) {
	if fn := id.refused.Load(); fn != nil {
		(*fn)(err)
	}
}

// ServerCredentials are the gRPC transport credentials of a metadata node's server: any
// certificate the cluster CA issued for clientAuth is let in (the services authorize), and
// every refused handshake is reported (OnRefuse) with the peer's address.
func (id *Identity) ServerCredentials() credentials.TransportCredentials {
	return reportingCreds{credentials.NewTLS(id.serverConfig("", []string{"h2"})), id}
}

// reportingCreds reports the server handshakes its credentials refuse.
type reportingCreds struct {
	credentials.TransportCredentials
	id *Identity
}

func (c reportingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.id.Refused(fmt.Errorf("cluster TLS: refused %s: %w", conn.RemoteAddr(), err))
	}
	return nc, info, err
}

func (c reportingCreds) Clone() credentials.TransportCredentials {
	return reportingCreds{c.TransportCredentials.Clone(), c.id}
}

// ClientCredentials are the gRPC transport credentials for dialling metadata nodes.
func (id *Identity) ClientCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(id.ClientConfig())
}
