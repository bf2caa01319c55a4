// Package s3test runs a real S3 server for tests: versitygw with its posix backend, as a
// child process on a loopback port, with generated credentials and a temporary directory.
//
// versitygw is not a module dependency (it is large); the harness finds the binary in PATH or
// in the Go bin directory and otherwise installs the pinned version with `go install`, once,
// under a file lock that parallel test binaries share.
package s3test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the versitygw release the harness installs.
const Version = "v1.8.0"

const module = "github.com/versity/versitygw/cmd/versitygw"

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary returns the path of the versitygw binary, installing it if it is nowhere to be found.
func Binary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() { binaryPath, binaryErr = findOrInstall() })
	if binaryErr != nil {
		t.Fatalf("versitygw: %v", binaryErr)
	}
	return binaryPath
}

func goBinDir() (string, error) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	return binDirOf(string(out))
}

// binDirOf is the directory `go install` writes to, from the output of `go env GOBIN
// GOPATH`: GOBIN's line, or the first GOPATH entry's bin when that line is empty (an unset
// GOBIN prints an empty first line, which must not be trimmed away with the rest).
func binDirOf(goEnv string) (string, error) {
	lines := strings.Split(strings.TrimRight(goEnv, "\n"), "\n")
	if len(lines) != 2 {
		return "", fmt.Errorf("go env GOBIN GOPATH printed %q", goEnv)
	}
	if gobin := strings.TrimSpace(lines[0]); gobin != "" {
		return gobin, nil
	}
	gopath := strings.SplitN(strings.TrimSpace(lines[1]), string(os.PathListSeparator), 2)[0]
	if gopath == "" {
		return "", fmt.Errorf("go env GOBIN GOPATH printed %q", goEnv)
	}
	return filepath.Join(gopath, "bin"), nil
}

func findOrInstall() (string, error) {
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path, nil
	}
	binDir, err := goBinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(binDir, "versitygw")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// Several test binaries may get here at once; the first installs, the others wait.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "strata-versitygw-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("install lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "s3test: installing %s@%s (about 2 minutes, once)\n", module, Version)
	install := exec.Command("go", "install", module+"@"+Version)
	install.Env = append(os.Environ(), "GOBIN="+binDir)
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", module, Version, err, out)
	}
	return path, nil
}

// Options change how the server runs.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a fresh CA, whose PEM file
	// is Server.CAFile.
	TLS bool
}

// Server is one versitygw process and its data. Its methods are not safe for concurrent use.
type Server struct {
	// Endpoint is host:port, without a scheme.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Dir is the posix backend's root: bucket b's object o is the file Dir/b/o.
	Dir string
	// CAFile is the PEM file of the CA that signed the server's certificate (Options.TLS).
	CAFile string

	t        testing.TB
	bin      string
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *os.File
	certFile string
	keyFile  string
}

// Start runs a versitygw with a new empty root and returns once it answers requests. The
// server stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	base := t.TempDir()
	s := &Server{
		t:         t,
		bin:       bin,
		Dir:       filepath.Join(base, "root"),
		AccessKey: "strata" + randomHex(t, 6),
		SecretKey: randomHex(t, 20),
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(base, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.log = log
	s.Endpoint = freeAddr(t)
	s.args = []string{"--access", s.AccessKey, "--secret", s.SecretKey, "--port", s.Endpoint, "--quiet"}
	if opts.TLS {
		s.writeCertificates(base)
		s.args = append(s.args, "--cert", s.certFile, "--key", s.keyFile)
	}
	s.args = append(s.args, "posix", s.Dir)
	t.Cleanup(func() {
		s.Stop()
		log.Close()
		if t.Failed() {
			if out, err := os.ReadFile(log.Name()); err == nil && len(out) > 0 {
				t.Logf("versitygw log:\n%s", out)
			}
		}
	})
	s.Start()
	return s
}

// Start starts the server again after Stop, on the same address and directory.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("s3test: Start of a running server")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(s.bin, s.args...)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("start versitygw: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		s.cmd, s.exited = cmd, exited
		err := s.waitReady(deadline)
		if err == nil {
			return
		}
		s.Stop()
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw on %s: %v", s.Endpoint, err)
		}
		// The port may still be held by the previous process's sockets; try again.
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReady polls until the server answers HTTP, or fails if it exits.
func (s *Server) waitReady(deadline time.Time) error {
	scheme := "http"
	client := &http.Client{Timeout: time.Second}
	if s.CAFile != "" {
		scheme = "https"
		pool := x509.NewCertPool()
		pemBytes, err := os.ReadFile(s.CAFile)
		if err != nil {
			return err
		}
		pool.AppendCertsFromPEM(pemBytes)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering (see its log)")
		default:
		}
		resp, err := client.Get(scheme + "://" + s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. Its
// directory stays. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
}

// ObjectPath returns the file that holds object in bucket.
func (s *Server) ObjectPath(bucket, object string) string {
	return filepath.Join(s.Dir, bucket, filepath.FromSlash(object))
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// writeCertificates creates a CA and a server certificate for 127.0.0.1 signed by it.
func (s *Server) writeCertificates(dir string) {
	t := s.t
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strata test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	s.certFile = filepath.Join(dir, "cert.pem")
	s.keyFile = filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{
		s.CAFile:   {Type: "CERTIFICATE", Bytes: caDER},
		s.certFile: {Type: "CERTIFICATE", Bytes: der},
		s.keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
