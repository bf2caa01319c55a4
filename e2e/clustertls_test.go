package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/etcdtest"
)

// TestClusterMTLS runs one `strata metadata` with cluster mTLS and a CRL and sends it admin
// commands: without certificates, in plaintext, with a certificate of another CA and with
// one revoked (by `strata cert revoke` and a SIGHUP while the node runs) they are refused;
// the cluster administrator's certificate is let in.
func TestClusterMTLS(t *testing.T) {
	etcd := etcdtest.Start(t)
	crl := filepath.Join(t.TempDir(), "crl.pem")
	leaving := clusterFiles(t, "admin", "leaving")
	certCmd := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(strataBin, append([]string{"cert"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("strata cert %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// A CRL revoking a certificate no one uses, so the node starts with a CRL.
	unused := clusterFiles(t, "admin", "unused")
	certCmd("revoke", "--dir", filepath.Dir(unused.CA), "--crl", crl, unused.Cert)
	node := newMetaNode(t, "m1", etcd, "--cluster-tls-crl", crl)
	startNodes(t, []*metaNode{node})

	userList := func(extra ...string) (string, error) {
		// A refused handshake looks like an unreachable node to the client, which retries
		// until the deadline: a short one.
		args := append([]string{"user", "list", "--etcd", etcd, "--timeout", "3s"}, extra...)
		out, err := exec.Command(strataBin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := userList(adminTLSArgs(t)...); err != nil {
		t.Fatalf("cluster administrator: %v\n%s", err, out)
	}
	if out, err := userList(); err == nil || !strings.Contains(out, "--cluster-tls-ca") {
		t.Errorf("no certificate: %v\n%s, want the command to ask for the TLS flags", err, out)
	}
	if out, err := userList("--insecure-plaintext-cluster"); err == nil {
		t.Errorf("plaintext against an mTLS node succeeded:\n%s", out)
	} else {
		t.Logf("plaintext: %s", out)
	}

	otherDir := t.TempDir()
	certCmd("init", "--dir", otherDir)
	certCmd("issue", "--dir", otherDir, "--role", "admin", "--name", "intruder")
	// The intruder trusts the cluster CA, so only the node's check stops it.
	intruder := []string{"--cluster-tls-ca", clusterFiles(t, "admin", "e2e").CA,
		"--cluster-tls-cert", filepath.Join(otherDir, "admin-intruder.pem"), "--cluster-tls-key", filepath.Join(otherDir, "admin-intruder-key.pem")}
	if out, err := userList(intruder...); err == nil {
		t.Errorf("an admin certificate of another CA was let in:\n%s", out)
	} else {
		t.Logf("other CA: %s", out)
	}
	waitLog(t, node, "certificate signed by unknown authority")

	leavingArgs := []string{"--cluster-tls-ca", leaving.CA, "--cluster-tls-cert", leaving.Cert, "--cluster-tls-key", leaving.Key}
	if out, err := userList(leavingArgs...); err != nil {
		t.Fatalf("admin before revocation: %v\n%s", err, out)
	}
	certCmd("revoke", "--dir", filepath.Dir(leaving.CA), "--crl", crl, leaving.Cert)
	node.signal(syscall.SIGHUP)
	waitLog(t, node, "reloaded TLS certificate")
	if out, err := userList(leavingArgs...); err == nil {
		t.Errorf("a revoked admin certificate was let in after SIGHUP:\n%s", out)
	}
	waitLog(t, node, "is revoked")
	if out, err := userList(adminTLSArgs(t)...); err != nil {
		t.Fatalf("cluster administrator after the reload: %v\n%s", err, out)
	}
}

// waitLog waits up to 10 s for text in the node's log.
func waitLog(t *testing.T, n *metaNode, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(n.logs(), text) {
			return
		}
	}
	t.Fatalf("node log has no %q:\n%s", text, tail(n.logs(), 30))
}
