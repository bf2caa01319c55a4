// Package testnet hands tests loopback addresses for servers that must be able to bind
// the same address again after a restart.
//
// A port picked by listening on port 0 comes from the kernel's ephemeral range, the range
// outgoing connections take their local ports from. A node killed and restarted on such a
// port races every connection the machine opens meanwhile (other tests, a load generator):
// one that took the port makes the restart fail with "address already in use". Ports
// below the ephemeral range are only ever taken by an explicit bind.
package testnet

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// handedOut are the addresses Addr returned in this test binary, so that two servers of
// one test never get the same address however soon the first binds it.
var handedOut sync.Map

// span is how many ports below the ephemeral range Addr picks from.
const span = 12000

// Addr returns ip:port with a port below the ephemeral range that was free a moment ago
// and that no earlier call in this binary returned. ip is any address of 127.0.0.0/8.
func Addr(t testing.TB, ip string) string {
	t.Helper()
	low := ephemeralLow()
	base := max(low-span, 1024)
	for range 4 * span {
		port := base + rand.IntN(low-base)
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		if _, taken := handedOut.LoadOrStore(addr, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatalf("testnet: no free port on %s between %d and %d", ip, base, low)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default 32768
// when it cannot be read).
var ephemeralLow = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low < 2048 {
		return 32768
	}
	return low
})
