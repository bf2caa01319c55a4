package bench

import (
	"os"
	"os/exec"
	"testing"
)

// TestTreeCPUCountsChildren: the CPU of a child that ran and was waited for counts in its
// parent's tree (cutime, cstime), as Dovecot's per-connection imap processes must, and a
// live child's CPU counts while it runs.
func TestTreeCPUCountsChildren(t *testing.T) {
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := busy.Run(); err != nil {
		t.Fatal(err)
	}
	child := busy.ProcessState.UserTime() + busy.ProcessState.SystemTime()
	after, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in clock ticks: allow one for the child's rounding.
	if got := after - before; got+clockTick < child {
		t.Errorf("tree CPU grew by %v, the child alone used %v", got, child)
	}

	live := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; read x")
	stdin, err := live.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); live.Wait() }()
	tree := processTree(os.Getpid())
	found := false
	for _, p := range tree {
		found = found || p == live.Process.Pid
	}
	if !found || tree[0] != os.Getpid() {
		t.Errorf("process tree %v: want this process first and the live child %d in it", tree, live.Process.Pid)
	}
}

func TestTreeCPUMissingProcess(t *testing.T) {
	if _, err := TreeCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
