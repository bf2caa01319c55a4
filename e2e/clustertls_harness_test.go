package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc/credentials"

	"github.com/strata-mail/strata/internal/clustertls"
)

// The cluster processes of every test run with mutual TLS on, as a deployment does: one CA
// for the test binary, made by `strata cert init`, and one certificate per identity, issued
// by `strata cert issue` the first time a test asks for it.
var (
	certMu     sync.Mutex
	certDir    string              // the CA's directory; "" until the first certificate
	certIssued = map[string]bool{} // role-name pairs issued
)

// removeClusterCerts deletes the CA and the certificates (TestMain, at the end).
func removeClusterCerts() {
	if certDir != "" {
		os.RemoveAll(certDir)
	}
}

// clusterFiles returns the files of the identity role/name, making the CA and the
// certificate with the strata binary when they do not exist yet.
func clusterFiles(t testing.TB, role, name string) clustertls.Files {
	t.Helper()
	certMu.Lock()
	defer certMu.Unlock()
	run := func(args ...string) {
		if out, err := exec.Command(strataBin, append([]string{"cert"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("strata cert %v: %v\n%s", args, err, out)
		}
	}
	if certDir == "" {
		dir, err := os.MkdirTemp("", "strata-e2e-certs")
		if err != nil {
			t.Fatal(err)
		}
		certDir = dir
		run("init", "--dir", certDir)
	}
	key := role + "-" + name
	if !certIssued[key] {
		args := []string{"issue", "--dir", certDir, "--role", role, "--name", name}
		if role == "node" || role == "frontend" {
			args = append(args, "--ip", "127.0.0.1", "--dns", "localhost")
		}
		run(args...)
		certIssued[key] = true
	}
	return clustertls.Files{
		CA:   filepath.Join(certDir, clustertls.CACertFile),
		Cert: filepath.Join(certDir, key+".pem"),
		Key:  filepath.Join(certDir, key+"-key.pem"),
	}
}

// clusterTLSArgs are the flags that give a strata process the identity role/name.
func clusterTLSArgs(t testing.TB, role, name string) []string {
	t.Helper()
	f := clusterFiles(t, role, name)
	return []string{"--cluster-tls-ca", f.CA, "--cluster-tls-cert", f.Cert, "--cluster-tls-key", f.Key}
}

// adminTLSArgs are the flags of an admin command run by the cluster administrator.
func adminTLSArgs(t testing.TB) []string { return clusterTLSArgs(t, "admin", "e2e") }

// adminCreds are the gRPC credentials of the tests' own calls to metadata nodes, as the
// cluster administrator.
func adminCreds(t testing.TB) credentials.TransportCredentials {
	t.Helper()
	id, err := clustertls.Load(clusterFiles(t, "admin", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	return id.ClientCredentials()
}
