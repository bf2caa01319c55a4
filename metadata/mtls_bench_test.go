package metadata

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/internal/clustertls"
	"github.com/strata-mail/strata/internal/clustertls/clustertlstest"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// BenchmarkMetadataRoundTrip is the cost of cluster mTLS on a metadata round trip: GetAccount
// from one client to the service on a single-node group over real loopback gRPC, plaintext
// and with the node's and an admin's certificates of a cluster CA (internal/clustertls, as
// `strata metadata` serves). "call" reuses one connection (the steady state of frontends);
// "dial" makes a new connection for each call, so it includes the TCP and TLS handshakes.
// Listeners on fixed ports below 32768 (the ephemeral range is for others on this machine).
// cpu-us/op is the process's CPU time (client, server and the idle Raft node) per call,
// which a loaded machine disturbs less than the wall time. Figures in docs/benchmarks.md.
func BenchmarkMetadataRoundTrip(b *testing.B) {
	ca := clustertlstest.New(b)
	node := ca.Identity(b, clustertls.RoleNode, "meta-1")
	client := ca.Identity(b, clustertls.RoleFrontend, "fe1")
	for _, mode := range []struct {
		name   string
		listen string
		server credentials.TransportCredentials
		client credentials.TransportCredentials
	}{
		{"plaintext", "127.0.0.1:21501", nil, insecure.NewCredentials()},
		{"mtls", "127.0.0.1:21502", node.ServerCredentials(), client.ClientCredentials()},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := startServiceOn(b, serviceNet{listen: mode.listen, serverCreds: mode.server, clientCreds: mode.client})
			s.setupAlice()
			req := &metadatapb.GetAccountRequest{Email: alice}
			b.Run("call", func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					if _, err := s.client.GetAccount(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("dial", func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(mode.client))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := metadatapb.NewMetadataClient(conn).GetAccount(context.Background(), req); err != nil {
						b.Fatal(err)
					}
					conn.Close()
				}
			})
		})
	}
}

// reportCPU starts counting the process's CPU time; the function it returns reports it per
// iteration as cpu-us/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-us/op") }
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
