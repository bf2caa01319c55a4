package clustertls_test

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/clustertls/clustertlstest"
)

// TestIssueRoles: every role's certificate carries its one URI SAN and the key usages of its
// role; client-only roles refuse host names; keys are written readable by the owner only.
func TestIssueRoles(t *testing.T) {
	ca := clustertlstest.New(t)
	for _, tc := range []struct {
		req    clustertls.Request
		uri    string
		server bool
	}{
		{clustertls.Request{Role: clustertls.RoleNode, Name: "n1", DNS: []string{"meta1"}, IPs: []net.IP{net.IPv4(10, 0, 0, 1)}}, "strata://node/n1", true},
		{clustertls.Request{Role: clustertls.RoleFrontend, Name: "fe1", KeyType: clustertls.KeyEd25519}, "strata://frontend/fe1", true},
		{clustertls.Request{Role: clustertls.RoleAdmin, Name: "alice"}, "strata://admin/cluster", false},
		{clustertls.Request{Role: clustertls.RoleTenantAdmin, Name: "bob", Tenant: "acme"}, "strata://admin/tenant/acme", false},
	} {
		files := ca.Files(t, tc.req)
		cert, err := clustertls.ReadCertificate(files.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if len(cert.URIs) != 1 || cert.URIs[0].String() != tc.uri {
			t.Errorf("%s: URIs %v, want [%s]", tc.req.Role, cert.URIs, tc.uri)
		}
		if got := slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth); got != tc.server {
			t.Errorf("%s: serverAuth %v, want %v", tc.req.Role, got, tc.server)
		}
		if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("%s: no clientAuth", tc.req.Role)
		}
		if tc.req.Role == clustertls.RoleNode && (!slices.Contains(cert.DNSNames, "meta1") || len(cert.IPAddresses) != 2) {
			t.Errorf("node SANs: %v %v", cert.DNSNames, cert.IPAddresses)
		}
		if st, err := os.Stat(files.Key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode: %v %v", tc.req.Role, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(ca.Dir, clustertls.CAKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode: %v %v", st.Mode(), err)
	}

	for _, bad := range []clustertls.Request{
		{Role: clustertls.RoleAdmin, Name: "a", DNS: []string{"x"}},
		{Role: clustertls.RoleTenantAdmin, Name: "a"},
		{Role: clustertls.RoleNode, Name: "n", Tenant: "acme"},
		{Role: clustertls.RoleNode, Name: "../x"},
		{Role: clustertls.RoleTenantAdmin, Name: "a", Tenant: "a/b"},
		{Role: "root", Name: "a"},
		{Role: clustertls.RoleNode, Name: "n", KeyType: "rsa"},
	} {
		if _, _, err := ca.Issue(bad); err == nil {
			t.Errorf("Issue(%+v) succeeded", bad)
		}
	}
	if _, err := clustertls.InitCA(ca.Dir, "again", clustertls.KeyEd25519, clustertls.DefaultCAValidity); err == nil {
		t.Error("InitCA replaced an existing CA")
	}
	if _, err := clustertls.LoadCA(ca.Dir); err != nil {
		t.Errorf("LoadCA: %v", err)
	}
}
