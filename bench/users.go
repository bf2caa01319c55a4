package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/embedded"
	"github.com/strata-mail/strata/metadata"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// UserNames expands pattern ("bench%d@example.com") into count names numbered from 1; a
// pattern without a verb names one user.
func UserNames(pattern string, count int) []string {
	if !strings.Contains(pattern, "%") {
		return []string{pattern}
	}
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf(pattern, i+1)
	}
	return names
}

// adminTimeout bounds each admin gRPC call unless the caller gives another bound.
const adminTimeout = 30 * time.Second

// CreateUsers creates the accounts through Strata's admin gRPC endpoint, first the tenant
// that owns their domains (named after the first domain) if no tenant does; accounts that
// exist already are kept. timeout bounds each call (0: 30 s); creating an account hashes its
// password, which takes seconds on a slow machine (an emulated one: bench/vm).
func CreateUsers(ctx context.Context, client metadatapb.MetadataClient, users []string, password string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = adminTimeout
	}
	domains := map[string]bool{}
	for _, u := range users {
		_, domain, ok := strings.Cut(u, "@")
		if !ok {
			return fmt.Errorf("user %q is not user@domain", u)
		}
		domains[strings.ToLower(domain)] = true
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	tenants, err := client.ListTenants(callCtx, &metadatapb.ListTenantsRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	for _, t := range tenants.GetTenants() {
		for _, d := range t.GetDomains() {
			delete(domains, strings.ToLower(d))
		}
	}
	for d := range domains {
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		_, err := client.CreateTenant(callCtx, &metadatapb.CreateTenantRequest{
			RequestId: embedded.NewRequestID(), Name: "bench-" + strings.ReplaceAll(d, ".", "-"), Domains: []string{d},
		})
		cancel()
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create tenant for %s: %w", d, err)
		}
	}
	for _, u := range users {
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		_, err := client.CreateAccount(callCtx, &metadatapb.CreateAccountRequest{
			RequestId: embedded.NewRequestID(), Email: u, Password: password,
		})
		cancel()
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create account %s: %w", u, err)
		}
	}
	return nil
}

// WriteDovecotPasswd writes a Dovecot passwd-file (user:{ARGON2ID}hash:uid:gid::home) with
// the same argon2id parameters Strata uses, so that a LOGIN costs both servers the same;
// each user's home is under homes.
func WriteDovecotPasswd(path string, users []string, password string, uid, gid int, homes string) error {
	// One hash serves every user: the salt is random, and the cost is in verifying.
	hash, err := metadata.HashPassword(password)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, u := range users {
		fmt.Fprintf(&b, "%s:{ARGON2ID}%s:%d:%d::%s::\n", u, hash, uid, gid, filepath.Join(homes, u))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		return fmt.Errorf("write passwd-file: %w", err)
	}
	return nil
}
