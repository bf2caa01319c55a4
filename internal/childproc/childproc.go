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
	Run(t, test, env, func(line string) bool { return line == ready })
}

// Run runs the test named test of this test binary with env added and hands each line of
// its standard output to onLine; the first time onLine returns true the child is
// SIGKILLed (the lines it wrote before dying are still handed on). Run returns once the
// child has ended.
func Run(t testing.TB, test string, env []string, onLine func(line string) (kill bool)) {
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
	killed := false
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if onLine(lines.Text()) && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
}
