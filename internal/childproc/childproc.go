// Package childproc runs a test of the running test binary as a child process, for the
// tests that SIGKILL a real process mid-work and then look at what it left.
package childproc

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// KillWhenReady runs the test named test of this test binary with env added, waits until
// it prints the line ready on its standard output, SIGKILLs it and waits for it to end.
func KillWhenReady(t testing.TB, test string, env []string, ready string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && lines.Text() != ready {
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}
