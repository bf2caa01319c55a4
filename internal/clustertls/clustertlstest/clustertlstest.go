// Package clustertlstest makes a throwaway cluster CA and identities for tests, with the
// same code `strata cert init` and `strata cert issue` run.
package clustertlstest

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/strata-mail/strata/internal/clustertls"
)

// CA is a cluster CA in a test's temporary directory.
type CA struct {
	*clustertls.CA
	Dir string
}

// New makes a CA in a new temporary directory of t.
func New(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	ca, err := clustertls.InitCA(dir, "Strata test CA", clustertls.KeyECDSAP256, clustertls.DefaultCAValidity)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{CA: ca, Dir: dir}
}

// Files issues a certificate for req (loopback IP SANs added for servers) and returns the
// files of that identity.
func (ca *CA) Files(t testing.TB, req clustertls.Request) clustertls.Files {
	t.Helper()
	if req.Role == clustertls.RoleNode || req.Role == clustertls.RoleFrontend {
		req.IPs = append(req.IPs, net.IPv4(127, 0, 0, 1))
	}
	base := filepath.Join(ca.Dir, string(req.Role)+"-"+req.Name+"-"+req.Tenant)
	files := clustertls.Files{CA: filepath.Join(ca.Dir, clustertls.CACertFile), Cert: base + ".pem", Key: base + "-key.pem"}
	if err := ca.IssueFiles(req, files.Cert, files.Key); err != nil {
		t.Fatal(err)
	}
	return files
}

// Identity issues a certificate of role for name and loads it.
func (ca *CA) Identity(t testing.TB, role clustertls.Role, name string) *clustertls.Identity {
	t.Helper()
	id, err := clustertls.Load(ca.Files(t, clustertls.Request{Role: role, Name: name}))
	if err != nil {
		t.Fatal(err)
	}
	return id
}
