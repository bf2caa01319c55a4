package testnet

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrBelowEphemeralRangeAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addr := Addr(t, "127.0.0.1")
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port >= ephemeralLow() || port < 1024 {
			t.Fatalf("port %d outside [1024, %d)", port, ephemeralLow())
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s not bindable: %v", addr, err)
		}
		ln.Close()
	}
}
