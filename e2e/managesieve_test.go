package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSieveConnect drives `strata serve`'s ManageSieve listener (RFC 5804) with sieve-connect
// (Debian package sieve-connect) over STARTTLS, verifying the certificate serve generated:
// upload, list, activate, download, the refused deletion of the active script, deactivate,
// delete; a script that does not compile is refused at upload and by CHECKSCRIPT with its
// line and column. The admin CLI sees what sieve-connect stored.
func TestSieveConnect(t *testing.T) {
	sieveConnect := requireTool(t, "sieve-connect", "sieve-connect")
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)
	if srv.sieveAddr == "" {
		t.Fatal("strata serve announced no ManageSieve address")
	}
	host, port, err := net.SplitHostPort(srv.sieveAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "require [\"fileinto\", \"imap4flags\"];\nif header :contains \"subject\" \"[list]\" {\n  addflag \"\\\\Seen\";\n  fileinto \"Lists\";\n}\n"
	local := filepath.Join(dir, "rules.sieve")
	if err := os.WriteFile(local, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	// run runs sieve-connect with the demo password on file descriptor 3, trusting the
	// generated certificate for the name it was made for.
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(sieveConnect, append([]string{
			"--server", host, "--port", port, "--user", "demo@example.com", "--passwordfd", "3",
			"--tlscafile", filepath.Join(dataDir, "tls", "cert.pem"), "--tlshostname", "localhost",
			"--noclearauth",
		}, args...)...)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.WriteString("demo\n")
		w.Close()
		defer r.Close()
		cmd.ExtraFiles = []*os.File{r}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("sieve-connect %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mustFail := func(want string, args ...string) {
		t.Helper()
		out, err := run(args...)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("sieve-connect %s: %v, want a failure with %q\n%s", strings.Join(args, " "), err, want, out)
		}
	}

	mustRun("--upload", "--localsieve", local, "--remotesieve", "rules")
	if out := mustRun("--list"); strings.TrimSpace(out) != `"rules"` {
		t.Fatalf("list after upload: %q", out)
	}
	mustRun("--activate", "--remotesieve", "rules")
	if out := mustRun("--list"); strings.TrimSpace(out) != `"rules" ACTIVE` {
		t.Fatalf("list after activate: %q", out)
	}
	downloaded := filepath.Join(dir, "downloaded.sieve")
	mustRun("--download", "--remotesieve", "rules", "--localsieve", downloaded)
	if got, err := os.ReadFile(downloaded); err != nil || !bytes.Equal(got, []byte(script)) {
		t.Fatalf("downloaded script: %q, %v; want %q", got, err, script)
	}
	if out := srv.mustAdmin(t, "sieve", "get", "demo@example.com", "rules"); !strings.Contains(out, `fileinto "Lists";`) {
		t.Fatalf("strata sieve get: %q", out)
	}
	mustFail(`NO (ACTIVE)`, "--delete", "--remotesieve", "rules")
	mustRun("--deactivate")
	mustRun("--delete", "--remotesieve", "rules")
	if out := mustRun("--list"); strings.TrimSpace(out) != "" {
		t.Fatalf("list after delete: %q", out)
	}

	bad := filepath.Join(dir, "bad.sieve")
	if err := os.WriteFile(bad, []byte("require \"fileinto\";\nif true {\n  fileinto;\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(`NO "line 3, column 3: `, "--upload", "--localsieve", bad, "--remotesieve", "bad")
	mustFail(`NO "line 3, column 3: `, "--checkscript", "--localsieve", bad)
	mustRun("--checkscript", "--localsieve", local)
	if out := mustRun("--list"); strings.TrimSpace(out) != "" {
		t.Fatalf("a script that does not compile was stored: %q", out)
	}
}
