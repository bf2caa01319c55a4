package imap

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/frontend/auth"
	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Quota roots (RFC 9208 3): every mailbox of an account belongs to the account's
// root and to its tenant's. Usage and limits live in the metadata service, which
// refuses APPEND, COPY and MOVE beyond a limit (ResourceExhausted, answered with
// NO [OVERQUOTA] by rpcStatus, RFC 9208 4.3.1).
const (
	quotaRootAccount = ""
	quotaRootTenant  = "Tenant"
)

// quotaRootName is the name the session sees for a root of GetQuota.
func quotaRootName(root *metadatapb.QuotaRoot) string {
	if root.GetTenant() != "" {
		return quotaRootTenant
	}
	return quotaRootAccount
}

// hasLimits reports whether a root has a limit; roots without one are not listed
// in QUOTAROOT, since a QUOTA response needs at least one resource (RFC 9208 9).
func hasLimits(root *metadatapb.QuotaRoot) bool {
	return root.GetLimits().StorageBytes != nil || root.GetLimits().Messages != nil
}

func (c *conn) quotaRoots() ([]*metadatapb.QuotaRoot, error) {
	var resp *metadatapb.GetQuotaResponse
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: c.accountName()})
		return err
	})
	if err != nil {
		return nil, rpcStatus(err, imapresp.CodeNonExistent, "quota")
	}
	return resp.GetRoots(), nil
}

// writeQuota writes one QUOTA response (RFC 9208 4.2.1). STORAGE is in units of
// 1024 octets (RFC 9208 5.1): usage is rounded up, the limit down, so a root at
// its limit never shows less usage than limit.
func (c *conn) writeQuota(root *metadatapb.QuotaRoot) {
	c.writeNamedQuota(quotaRootName(root), root)
}

// writeNamedQuota is writeQuota under the root name name.
func (c *conn) writeNamedQuota(name string, root *metadatapb.QuotaRoot) {
	lim, use := root.GetLimits(), root.GetUsage()
	resources := make([]imapresp.QuotaResource, 0, 2)
	if lim.StorageBytes != nil {
		resources = append(resources, imapresp.QuotaResource{Name: "STORAGE", Usage: (use.GetStorageBytes() + 1023) / 1024, Limit: lim.GetStorageBytes() / 1024})
	}
	if lim.Messages != nil {
		resources = append(resources, imapresp.QuotaResource{Name: "MESSAGE", Usage: use.GetMessages(), Limit: lim.GetMessages()})
	}
	c.bw.Write(imapresp.AppendQuota(nil, c.encoder(), name, resources))
}

// cmdGetQuotaRoot: RFC 9208 4.1.2. The mailbox must exist and be visible to the
// session; the answer lists the roots that have limits, each followed by its QUOTA
// response. Another owner's mailbox shows only the tenant's root: the session's own root
// does not govern it, and the owner's usage is not the session's to see.
func (c *conn) cmdGetQuotaRoot(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.MailboxArgs)
	ref, _, err := c.lookupMailbox(args.Mailbox)
	if err != nil {
		return err
	}
	roots, err := c.quotaRoots()
	if err != nil {
		return err
	}
	type named struct {
		name string
		root *metadatapb.QuotaRoot
	}
	var listed []named
	if !c.personal(ref) {
		// A tenant admin sees the root of an owner of its tenant, named by the owner's
		// address, as SETQUOTA names it.
		if owner, ok, err := c.tenantAccountRoot(ref.owner); err != nil {
			return err
		} else if ok && hasLimits(owner) {
			listed = append(listed, named{ref.owner, owner})
		}
		roots = slices.DeleteFunc(roots, func(r *metadatapb.QuotaRoot) bool { return r.GetTenant() == "" })
	}
	for _, r := range roots {
		if hasLimits(r) {
			listed = append(listed, named{quotaRootName(r), r})
		}
	}
	names := make([]string, len(listed))
	for i, n := range listed {
		names[i] = n.name
	}
	c.bw.Write(imapresp.AppendQuotaRoot(nil, c.encoder(), c.mailboxOut(ref.full), names))
	for _, n := range listed {
		c.writeNamedQuota(n.name, n.root)
	}
	return nil
}

// cmdGetQuota: RFC 9208 4.1.1. The session's own roots exist for it, "" and "Tenant"; for
// a tenant admin also the root of every account of its tenant, named by its address (the
// names SETQUOTA takes). A root without limits is answered like an unknown one, and so is
// another account's root for anyone else.
func (c *conn) cmdGetQuota(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.QuotaRootArgs)
	if strings.Contains(args.Root, "@") && !strings.EqualFold(args.Root, c.accountName()) {
		root, ok, err := c.tenantAccountRoot(args.Root)
		if err != nil {
			return err
		}
		if !ok || !hasLimits(root) {
			return no(imapresp.CodeNonExistent, "No such quota root")
		}
		c.writeNamedQuota(args.Root, root)
		return nil
	}
	roots, err := c.quotaRoots()
	if err != nil {
		return err
	}
	for _, r := range roots {
		if quotaRootName(r) == args.Root && hasLimits(r) {
			c.writeQuota(r)
			return nil
		}
	}
	return no(imapresp.CodeNonExistent, "No such quota root")
}

// tenantAccountRoot returns the quota root of account when the session's account is, now
// (GetAccount, not as at login), a tenant admin of account's tenant; ok is false for
// anyone else, for an account of another tenant and for one that does not exist, which
// all look alike. Mailbox owners that are no account (a tenant's shared mailboxes) have no
// account root.
func (c *conn) tenantAccountRoot(account string) (root *metadatapb.QuotaRoot, ok bool, err error) {
	if !c.account.GetTenantAdmin() || !strings.Contains(account, "@") {
		return nil, false, nil
	}
	var admin *metadatapb.Account
	var resp *metadatapb.GetQuotaResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		if admin, err = c.srv.cfg.Metadata.GetAccount(ctx, &metadatapb.GetAccountRequest{Email: c.accountName()}); err != nil {
			return err
		}
		resp, err = c.srv.cfg.Metadata.GetQuota(ctx, &metadatapb.GetQuotaRequest{Account: account})
		return err
	})
	switch {
	case status.Code(err) == codes.NotFound:
		return nil, false, nil
	case err != nil:
		return nil, false, rpcStatus(err, imapresp.CodeNonExistent, "quota")
	case !admin.GetTenantAdmin() || admin.GetDisabled():
		return nil, false, nil
	}
	var accountRoot *metadatapb.QuotaRoot
	sameTenant := false
	for _, r := range resp.GetRoots() {
		switch {
		case r.GetTenant() != "":
			sameTenant = r.GetTenant() == admin.GetTenant()
		case r.GetAccount() != "":
			accountRoot = r
		}
	}
	return accountRoot, sameTenant && accountRoot != nil, nil
}

// cmdSetQuota: RFC 9208 4.1.3. Only an account flagged tenant admin (`strata user
// tenant-admin`) may set limits, and only on the roots of its tenant's accounts: its own
// root "" or another account's root named by its address. The Tenant root is the
// provider's, as are all roots for every other user: NO [NOPERM]. The metadata service
// checks the same again (SetQuotaRequest.user), against the account as it is now, not as it
// was at login. Resources not named lose their limit (RFC 9208 4.1.3: "Any previous
// resource limits for the named quota root are discarded").
func (c *conn) cmdSetQuota(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.SetQuotaArgs)
	if !c.account.GetTenantAdmin() {
		return no(imapresp.CodeNoPerm, "Quota limits are set by the administrator")
	}
	var target string
	switch {
	case args.Root == quotaRootAccount:
		target = c.accountName()
	case args.Root == quotaRootTenant:
		return no(imapresp.CodeNoPerm, "The tenant's quota is set by the provider")
	case strings.Contains(args.Root, "@"):
		target = args.Root
	default:
		return no(imapresp.CodeNonExistent, "No such quota root")
	}
	limits := &metadatapb.QuotaLimits{}
	for _, l := range args.Limits {
		switch l.Resource {
		case "STORAGE": // RFC 9208 5.1: units of 1024 octets
			if limits.StorageBytes != nil {
				return bad("", "STORAGE given twice")
			}
			if l.Limit > math.MaxUint64/1024 {
				return no(imapresp.CodeCannot, "STORAGE limit too large")
			}
			limits.StorageBytes = proto.Uint64(l.Limit * 1024)
		case "MESSAGE": // RFC 9208 5.2
			if limits.Messages != nil {
				return bad("", "MESSAGE given twice")
			}
			limits.Messages = proto.Uint64(l.Limit)
		default:
			// RFC 9208 4.1.3: NO, can't set that data; the resources are the QUOTA=RES-*
			// capabilities.
			return no(imapresp.CodeCannot, "Unsupported quota resource "+l.Resource)
		}
	}
	requestID := newRequestID()
	var root *metadatapb.QuotaRoot
	err := c.withRetry(func(ctx context.Context) error {
		var err error
		root, err = c.srv.cfg.Metadata.SetQuota(ctx, &metadatapb.SetQuotaRequest{
			RequestId: requestID, Account: target, User: c.accountName(), Limits: limits,
		})
		return err
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return no(imapresp.CodeNonExistent, "No such quota root")
	default:
		return rpcStatus(err, imapresp.CodeNonExistent, "setquota")
	}
	if hasLimits(root) {
		// RFC 9208 4.1.3: the untagged QUOTA of the root as set, under the name given.
		name := args.Root
		if name != quotaRootAccount {
			name = root.GetAccount()
		}
		c.writeNamedQuota(name, root)
	}
	return nil
}

// accountRevoked returns why the session must end, "" when it may go on (auth.Recheck),
// asking the metadata service at most once per auth.RecheckInterval.
func (c *conn) accountRevoked() string {
	if c.account == nil || time.Since(c.accountChecked) < auth.RecheckInterval {
		return ""
	}
	ctx, cancel := c.rpcContext()
	defer cancel()
	why, err := auth.Recheck(ctx, c.srv.cfg.Metadata, c.account, auth.ServiceIMAP)
	c.accountChecked = time.Now()
	if err != nil {
		c.log.Debug("re-check account", "err", err)
	}
	return why
}
