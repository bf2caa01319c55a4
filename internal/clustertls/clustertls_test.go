package clustertls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/clustertls/clustertlstest"
)

// serveGRPC runs a gRPC server with the health service over loopback TCP and returns its
// address and the identities of the callers it saw.
func serveGRPC(t *testing.T, creds credentials.TransportCredentials) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	callers := make(chan string, 16)
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				// Admin authorization reads the identity from the verified chain only.
				if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
					if uris := ti.State.VerifiedChains[0][0].URIs; len(uris) == 1 {
						callers <- uris[0].String()
					}
				}
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), callers
}

// call makes one unary call to addr with creds.
func call(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func load(t *testing.T, files clustertls.Files) *clustertls.Identity {
	t.Helper()
	id, err := clustertls.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestMutualTLSRefusesPeers: a node's server lets in any identity of its CA and refuses a
// client certificate of another CA, an expired one, a revoked one, and none; a client
// refuses a server that is not a node.
func TestMutualTLSRefusesPeers(t *testing.T) {
	ca := clustertlstest.New(t)
	other := clustertlstest.New(t)
	nodeFiles := ca.Files(t, clustertls.Request{Role: clustertls.RoleNode, Name: "n1"})
	crl := filepath.Join(ca.Dir, "crl.pem")
	revokedFiles := ca.Files(t, clustertls.Request{Role: clustertls.RoleAdmin, Name: "fired"})
	revokedCert, err := clustertls.ReadCertificate(revokedFiles.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Revoke(crl, []*x509.Certificate{revokedCert}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	nodeFiles.CRL = crl
	server := load(t, nodeFiles)
	refusals := make(chan error, 16)
	server.OnRefuse(func(err error) { refusals <- err })
	addr, callers := serveGRPC(t, server.ServerCredentials())

	for _, tc := range []struct {
		name  string
		creds func() credentials.TransportCredentials
		want  string // identity the server sees; "" means refused ...
		why   string // ... for this reason (in the server's refusal)
	}{
		{"cluster admin", func() credentials.TransportCredentials {
			return ca.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials()
		}, "strata://admin/cluster", ""},
		{"tenant admin", func() credentials.TransportCredentials {
			return load(t, ca.Files(t, clustertls.Request{Role: clustertls.RoleTenantAdmin, Name: "bob", Tenant: "acme"})).ClientCredentials()
		}, "strata://admin/tenant/acme", ""},
		{"frontend", func() credentials.TransportCredentials {
			return ca.Identity(t, clustertls.RoleFrontend, "fe1").ClientCredentials()
		}, "strata://frontend/fe1", ""},
		{"other CA", func() credentials.TransportCredentials {
			// The client trusts both CAs, so only the server's check can refuse it.
			files := other.Files(t, clustertls.Request{Role: clustertls.RoleAdmin, Name: "ops"})
			files.CA = bothCAs(t, ca, other)
			return load(t, files).ClientCredentials()
		}, "", "certificate signed by unknown authority"},
		{"expired", func() credentials.TransportCredentials {
			return load(t, ca.Files(t, clustertls.Request{Role: clustertls.RoleAdmin, Name: "old",
				NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})).ClientCredentials()
		}, "", "has expired"},
		{"revoked", func() credentials.TransportCredentials { return load(t, revokedFiles).ClientCredentials() }, "", "is revoked"},
		{"no certificate", func() credentials.TransportCredentials {
			cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: x509.NewCertPool(), InsecureSkipVerify: true}
			return credentials.NewTLS(cfg)
		}, "", "didn't provide a certificate"},
		{"plaintext", insecure.NewCredentials, "", "does not look like a TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := call(addr, tc.creds())
			if tc.want == "" {
				if err == nil {
					t.Fatal("call succeeded, want the handshake refused")
				}
				if tc.why != "" {
					select {
					case why := <-refusals:
						if !strings.Contains(why.Error(), tc.why) {
							t.Fatalf("server refused with %q, want %q", why, tc.why)
						}
					case <-time.After(5 * time.Second):
						t.Fatal("the server reported no refusal")
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := <-callers; got != tc.want {
				t.Fatalf("server saw %q, want %q", got, tc.want)
			}
		})
	}

	// A client dialling a server that holds a frontend (not a node) certificate refuses it.
	feAddr, _ := serveGRPC(t, ca.Identity(t, clustertls.RoleFrontend, "fe2").ServerCredentials())
	err = call(feAddr, ca.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials())
	if err == nil || !strings.Contains(err.Error(), "not a strata://node/") {
		t.Fatalf("call to a frontend posing as a node: %v, want refused", err)
	}
}

// bothCAs writes a CA file trusting the certificates of a and b.
func bothCAs(t *testing.T, a, b *clustertlstest.CA) string {
	t.Helper()
	var pem []byte
	for _, ca := range []*clustertlstest.CA{a, b} {
		data, err := os.ReadFile(filepath.Join(ca.Dir, clustertls.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		pem = append(pem, data...)
	}
	path := filepath.Join(t.TempDir(), "both.pem")
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReloadSwitchesCA: after the files move to a new CA and Reload, a server accepts the
// new CA's clients and refuses the old CA's; a reload of broken files keeps the set in use.
func TestReloadSwitchesCA(t *testing.T) {
	oldCA, newCA := clustertlstest.New(t), clustertlstest.New(t)
	oldFiles := oldCA.Files(t, clustertls.Request{Role: clustertls.RoleNode, Name: "n1"})
	newFiles := newCA.Files(t, clustertls.Request{Role: clustertls.RoleNode, Name: "n1"})
	dir := t.TempDir()
	live := clustertls.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	install := func(from clustertls.Files) {
		for src, dst := range map[string]string{from.CA: live.CA, from.Cert: live.Cert, from.Key: live.Key} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(oldFiles)
	server := load(t, live)
	addr, _ := serveGRPC(t, server.ServerCredentials())
	oldAdmin := oldCA.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials()
	newAdmin := newCA.Identity(t, clustertls.RoleAdmin, "ops").ClientCredentials()
	if err := call(addr, oldAdmin); err != nil {
		t.Fatalf("old CA before reload: %v", err)
	}
	if err := call(addr, newAdmin); err == nil {
		t.Fatal("new CA accepted before reload")
	}

	install(newFiles)
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := call(addr, newAdmin); err != nil {
		t.Fatalf("new CA after reload: %v", err)
	}
	if err := call(addr, oldAdmin); err == nil {
		t.Fatal("old CA accepted after reload")
	}

	if err := os.WriteFile(live.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if err := call(addr, newAdmin); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}
