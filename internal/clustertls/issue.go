package clustertls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/strata-mail/strata/internal/fsync"
)

// KeyType is the algorithm of a generated key.
type KeyType string

const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyEd25519   KeyType = "ed25519"
)

// Validity defaults.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// backdate covers clocks a little behind the issuer's.
	backdate = 5 * time.Minute
)

// Role is what a certificate is for.
type Role string

const (
	RoleNode        Role = "node"
	RoleFrontend    Role = "frontend"
	RoleAdmin       Role = "admin"
	RoleTenantAdmin Role = "tenant-admin"
)

// roleSpec is how a role's certificate is made.
type roleSpec struct {
	// identity builds the URI SAN from the name and the tenant.
	identity func(name, tenant string) string
	// server: the certificate also serves (serverAuth) and carries the DNS and IP SANs.
	server bool
	// tenant: --tenant is required (and allowed only here).
	tenant bool
}

// roles lists what each role's certificate holds (package doc: the identities).
var roles = map[Role]roleSpec{
	RoleNode:        {identity: func(name, _ string) string { return IdentityNodePrefix + name }, server: true},
	RoleFrontend:    {identity: func(name, _ string) string { return IdentityFrontendPrefix + name }, server: true},
	RoleAdmin:       {identity: func(string, string) string { return IdentityClusterAdmin }},
	RoleTenantAdmin: {identity: func(_, tenant string) string { return IdentityTenantAdminPrefix + tenant }, tenant: true},
}

// Roles lists the role names, for usage text.
func Roles() []Role { return []Role{RoleNode, RoleFrontend, RoleAdmin, RoleTenantAdmin} }

// pathSegment is what a name or tenant may be: one URI path segment without escaping.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Request describes a certificate to issue.
type Request struct {
	Role    Role
	Name    string // node ID, frontend name, or the administrator's name (the subject CN)
	Tenant  string // tenant-admin only
	DNS     []string
	IPs     []net.IP
	KeyType KeyType
	// NotBefore and NotAfter default to now (less a few minutes) and DefaultCertValidity later.
	NotBefore, NotAfter time.Time
}

// CA is the cluster CA's certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CAFileNames are the files InitCA writes into its directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// InitCA makes a new CA named name in dir (ca.pem, and ca-key.pem readable by its owner
// only). It refuses to overwrite an existing CA.
func InitCA(dir, name string, keyType KeyType, validity time.Duration) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s exists: refusing to replace a CA", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	key, err := generateKey(keyType)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Strata"}, CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // RFC 5280 4.2.1.9: this CA signs end-entity certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA directory: %w", err)
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads the CA InitCA wrote to dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("CA key: no PEM PRIVATE KEY block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	return &CA{Cert: certs[0], Key: key}, nil
}

// Issue makes a key and a certificate for req signed by the CA, as PEM.
func (ca *CA) Issue(req Request) (certPEM, keyPEM []byte, err error) {
	spec, ok := roles[req.Role]
	if !ok {
		return nil, nil, fmt.Errorf("unknown role %q (one of %v)", req.Role, Roles())
	}
	if !pathSegment.MatchString(req.Name) {
		return nil, nil, fmt.Errorf("name %q: letters, digits, '.', '_' and '-' only, starting with a letter or digit", req.Name)
	}
	switch {
	case spec.tenant && !pathSegment.MatchString(req.Tenant):
		return nil, nil, fmt.Errorf("role %s needs a tenant name (letters, digits, '.', '_', '-'), got %q", req.Role, req.Tenant)
	case !spec.tenant && req.Tenant != "":
		return nil, nil, fmt.Errorf("role %s takes no tenant", req.Role)
	case !spec.server && (len(req.DNS) > 0 || len(req.IPs) > 0):
		return nil, nil, fmt.Errorf("role %s is a client only: no DNS or IP names", req.Role)
	}
	identity, err := url.Parse(spec.identity(req.Name, req.Tenant))
	if err != nil {
		return nil, nil, err
	}
	key, err := generateKey(req.KeyType)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	if req.NotBefore.IsZero() {
		req.NotBefore = now.Add(-backdate)
	}
	if req.NotAfter.IsZero() {
		req.NotAfter = now.Add(DefaultCertValidity)
	}
	if req.NotAfter.After(ca.Cert.NotAfter) {
		req.NotAfter = ca.Cert.NotAfter // RFC 5280 6.1.3: no use outliving the issuer
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Strata"}, OrganizationalUnit: []string{string(req.Role)}, CommonName: req.Name},
		NotBefore:    req.NotBefore,
		NotAfter:     req.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{identity},
		DNSNames:     req.DNS,
		IPAddresses:  req.IPs,
	}
	if spec.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if _, isECDSA := key.(*ecdsa.PrivateKey); isECDSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyAgreement
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// IssueFiles is Issue writing the certificate to certPath and the key to keyPath (0600).
func (ca *CA) IssueFiles(req Request, certPath, keyPath string) error {
	certPEM, keyPEM, err := ca.Issue(req)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, certPEM, 0o644)
}

// Revoke adds the serial numbers of certs to the CRL at crlPath (made when missing) and signs
// it again, with the next CRL number (RFC 5280 5.2.3) and nextUpdate after validity.
func (ca *CA) Revoke(crlPath string, certs []*x509.Certificate, validity time.Duration) error {
	var entries []x509.RevocationListEntry
	number := big.NewInt(1)
	if data, err := os.ReadFile(crlPath); err == nil {
		if block, _ := pem.Decode(data); block != nil {
			data = block.Bytes
		}
		old, err := x509.ParseRevocationList(data)
		if err != nil {
			return fmt.Errorf("CRL %s: %w", crlPath, err)
		}
		if err := old.CheckSignatureFrom(ca.Cert); err != nil {
			return fmt.Errorf("CRL %s is not this CA's: %w", crlPath, err)
		}
		entries = old.RevokedCertificateEntries
		if old.Number != nil {
			number.Add(old.Number, big.NewInt(1))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	now := time.Now()
	for _, c := range certs {
		if err := c.CheckSignatureFrom(ca.Cert); err != nil {
			return fmt.Errorf("certificate %q was not issued by this CA: %w", c.Subject.CommonName, err)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.Add(validity),
	}, ca.Cert, ca.Key)
	if err != nil {
		return fmt.Errorf("sign CRL: %w", err)
	}
	return writeFile(crlPath, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
}

// ReadCertificate reads the first certificate of a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs[0], nil
}

func generateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	}
	return nil, fmt.Errorf("key type %q: want %s or %s", t, KeyECDSAP256, KeyEd25519)
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random 127-bit serial number (RFC 5280 4.1.2.2: positive, at most 20 octets).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writeFile writes data to path with mode, whole or not at all (fsync.WriteFile), making
// its directory first.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fsync.WriteFile(path, data, mode)
}
