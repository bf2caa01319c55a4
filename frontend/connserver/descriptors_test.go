//go:build unix

package connserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/strata-mail/strata/internal/testwait"
)

// TestOutOfDescriptors: an accept that fails for want of file descriptors (EMFILE) is
// logged and retried, not the end of the server: the connection waiting in the listener's
// backlog is served once a descriptor frees.
func TestOutOfDescriptors(t *testing.T) {
	logs := &logRecords{}
	_, addr, served := server(t, 10, logs)
	dial(t, addr, "OK")

	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	// Take every descriptor the process may open, then give one back for the client's
	// socket: the server's accept of it has none left.
	lowered := limit
	lowered.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	var fillers []*os.File
	release := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit)
	}
	t.Cleanup(release)
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, f)
	}
	if len(fillers) == 0 {
		t.Fatal("no descriptor left to give back")
	}
	fillers[len(fillers)-1].Close()
	fillers = fillers[:len(fillers)-1]

	nc, err := net.Dial("tcp", addr) // takes the descriptor given back
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &client{nc: nc, r: bufio.NewReader(nc)}
	greeting := make(chan string, 1)
	go func() {
		// The greeting comes once the server accepted the connection, after release.
		line, _ := c.r.ReadString('\n')
		greeting <- line
	}()
	testwait.Until(t, 10*time.Second, func() error {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, msg := range logs.msgs {
			if msg == "out of file descriptors; LINE connections wait until one frees" {
				return nil
			}
		}
		return fmt.Errorf("logged %q, want the accept failure", logs.msgs)
	})
	release()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	select {
	case line := <-greeting:
		if line != "OK\r\n" {
			t.Fatalf("greeting %q after a descriptor freed, want OK", line)
		}
		c.send(t, "hello")
		if got := c.line(t); got != "echo: hello" {
			t.Fatalf("echo %q", got)
		}
	case err := <-served:
		t.Fatalf("Serve returned %v after running out of descriptors", err)
	}
}
