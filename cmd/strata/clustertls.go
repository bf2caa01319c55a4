package main

import (
	"errors"
	"log/slog"
	"net"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-mail/strata/internal/clustertls"
)

// insecurePlaintextFlag turns cluster mTLS off; nothing else does.
const insecurePlaintextFlag = "insecure-plaintext-cluster"

// errNoClusterTLS is the error of a cluster process or command given neither cluster TLS
// files nor --insecure-plaintext-cluster.
var errNoClusterTLS = errors.New("cluster traffic is mutual TLS: give --cluster-tls-ca, --cluster-tls-cert and --cluster-tls-key (made by `strata cert init` and `strata cert issue`), or --" + insecurePlaintextFlag + " to send it in plaintext")

// addClusterTLSFlags registers the cluster mTLS flags of metadata nodes, frontends and admin
// commands (internal/clustertls).
func addClusterTLSFlags(f *pflag.FlagSet) {
	f.String("cluster-tls-ca", "", "PEM file of the cluster CA: peers must present a certificate it issued (SIGHUP reads it again in servers)")
	f.String("cluster-tls-cert", "", "PEM certificate this process presents to the other cluster processes")
	f.String("cluster-tls-key", "", "PEM private key of --cluster-tls-cert")
	f.String("cluster-tls-crl", "", "PEM CRL of the cluster CA (`strata cert revoke`): certificates it lists are refused; empty: none")
	f.Bool(insecurePlaintextFlag, false, "send cluster traffic (metadata and admin gRPC, Raft) unencrypted and unauthenticated, for tests only")
}

// clusterTLSFromFlags loads the cluster TLS identity the flags name; nil with
// --insecure-plaintext-cluster, errNoClusterTLS with neither.
func clusterTLSFromFlags(f *pflag.FlagSet) (*clustertls.Identity, error) {
	files := clustertls.Files{}
	files.CA, _ = f.GetString("cluster-tls-ca")
	files.Cert, _ = f.GetString("cluster-tls-cert")
	files.Key, _ = f.GetString("cluster-tls-key")
	files.CRL, _ = f.GetString("cluster-tls-crl")
	plaintext, _ := f.GetBool(insecurePlaintextFlag)
	given := files != clustertls.Files{}
	switch {
	case given && plaintext:
		return nil, errors.New("give either the --cluster-tls-* files or --" + insecurePlaintextFlag + ", not both")
	case plaintext:
		return nil, nil
	case !given:
		return nil, errNoClusterTLS
	}
	return clustertls.Load(files)
}

// clusterClientCreds are the credentials to dial metadata nodes with: identity's, or
// plaintext when it is nil.
func clusterClientCreds(identity *clustertls.Identity) credentials.TransportCredentials {
	if identity == nil {
		return insecure.NewCredentials()
	}
	return identity.ClientCredentials()
}

// logRefusals logs every peer the identity refuses (nothing when it is nil).
func logRefusals(identity *clustertls.Identity, logger *slog.Logger) {
	if identity != nil {
		identity.OnRefuse(func(err error) { logger.Warn("refused a cluster peer", "err", err) })
	}
}

// adminCreds are the credentials of an admin command: the cluster TLS identity its flags
// name, or plaintext when asked for or when the only target is a loopback --server with no
// cluster TLS flags (`strata serve`'s admin endpoint, loopback-only and plaintext: the
// embedded mode has no cluster traffic).
func adminCreds(f *pflag.FlagSet) (credentials.TransportCredentials, error) {
	identity, err := clusterTLSFromFlags(f)
	if errors.Is(err, errNoClusterTLS) {
		etcd, _ := f.GetString("etcd")
		server, _ := f.GetString("server")
		if (etcd == "" || f.Changed("server")) && isLoopback(server) {
			return insecure.NewCredentials(), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return clusterClientCreds(identity), nil
}

// isLoopback reports whether addr (host:port) names a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
