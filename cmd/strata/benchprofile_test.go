package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestBenchCPUProfile: `strata bench --cpu-profile FILE` writes a CPU profile of the load
// generator (a gzipped pprof protobuf) once the run is over.
func TestBenchCPUProfile(t *testing.T) {
	srv := startAdminServer(t)
	mustStrata(t, srv, "tenant", "add", "acme", "--domains", "acme.test")
	mustStrata(t, srv, "bench", "users", "--users", "2", "--user-pattern", "p%d@acme.test", "--password", "pw")
	path := filepath.Join(t.TempDir(), "loadgen.prof")
	out, errOut, err := runStrataIn(t, "", "bench", "--addr", srv.IMAPAddr(), "--users", "2", "--user-pattern", "p%d@acme.test",
		"--password", "pw", "--clients", "2", "--duration", "1s", "--profile", "append=1", "--max-size", "16384",
		"--login-first", "--cpu-profile", path)
	if err != nil {
		t.Fatalf("bench --cpu-profile: %v\n%s%s", err, out, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("the profile (%d bytes) is not gzipped, as pprof writes it", len(b))
	}
}
