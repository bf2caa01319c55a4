package metadata

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// The admin RPCs of issue 7: tenants, domains, account state and quotas.

func (s *Service) DeleteTenant(ctx context.Context, req *metadatapb.DeleteTenantRequest) (*metadatapb.DeleteTenantResponse, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: req}}, (*metadatapb.CommandResult).GetDeleteTenant)
}

func (s *Service) AddDomain(ctx context.Context, req *metadatapb.AddDomainRequest) (*metadatapb.Tenant, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_AddDomain{AddDomain: req}}, (*metadatapb.CommandResult).GetTenant)
}

func (s *Service) RemoveDomain(ctx context.Context, req *metadatapb.RemoveDomainRequest) (*metadatapb.Tenant, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_RemoveDomain{RemoveDomain: req}}, (*metadatapb.CommandResult).GetTenant)
}

func (s *Service) SetAccountDisabled(ctx context.Context, req *metadatapb.SetAccountDisabledRequest) (*metadatapb.Account, error) {
	req.Email = accountName(req.GetEmail())
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetAccountDisabled{SetAccountDisabled: req}})
	if err != nil {
		return nil, err
	}
	return res.GetAccount(), nil
}

func (s *Service) SetAccountTenantAdmin(ctx context.Context, req *metadatapb.SetAccountTenantAdminRequest) (*metadatapb.Account, error) {
	req.Email = accountName(req.GetEmail())
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetAccountTenantAdmin{SetAccountTenantAdmin: req}})
	if err != nil {
		return nil, err
	}
	return res.GetAccount(), nil
}

// GetAccount returns an account without its password hash; frontends call it to
// notice that a logged-in account was disabled or deleted.
func (s *Service) GetAccount(ctx context.Context, req *metadatapb.GetAccountRequest) (*metadatapb.Account, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	rec, found, err := v.account(accountName(req.GetEmail()))
	if err != nil {
		return nil, storageStatus(err)
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "account %q not found", req.GetEmail())
	}
	account := rec.GetAccount()
	if len(req.GetCredentialStamp()) > 0 {
		// A session's re-check (frontend/imap accountRevoked): a changed password or a
		// revoked app password ends the sessions it logged in.
		_, ok := credentialLogsIn(rec, found, req.GetService(), req.GetCredentialStamp())
		account.CredentialRevoked = !ok
	}
	return s.loginAnswer(account), nil
}

func (s *Service) SetQuota(ctx context.Context, req *metadatapb.SetQuotaRequest) (*metadatapb.QuotaRoot, error) {
	if req.GetAccount() != "" {
		req.Account = accountName(req.GetAccount())
	}
	if req.GetUser() != "" {
		req.User = accountName(req.GetUser())
		if req.User == "" {
			return nil, status.Error(codes.PermissionDenied, "set quota: the acting user is no account")
		}
	}
	res, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetQuota{SetQuota: req}})
	if err != nil {
		return nil, err
	}
	return res.GetQuota(), nil
}

// GetQuota returns the roots of an account (its own, then its tenant's) or of a
// tenant, with their limits and exact usage.
func (s *Service) GetQuota(ctx context.Context, req *metadatapb.GetQuotaRequest) (*metadatapb.GetQuotaResponse, error) {
	if (req.GetAccount() == "") == (req.GetTenant() == "") {
		return nil, status.Error(codes.InvalidArgument, "get quota: give an account or a tenant")
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp := &metadatapb.GetQuotaResponse{}
	tenant := req.GetTenant()
	if req.GetAccount() != "" {
		email := accountName(req.GetAccount())
		rec, found, err := v.account(email)
		if err != nil {
			return nil, storageStatus(err)
		}
		if !found {
			return nil, status.Errorf(codes.NotFound, "account %q not found", req.GetAccount())
		}
		root, err := quotaRoot(v.r, quotaAccount, email)
		if err != nil {
			return nil, storageStatus(err)
		}
		resp.Roots = append(resp.Roots, root)
		tenant = rec.GetAccount().GetTenant()
	} else if _, found, err := getRaw(v.r, tenantKey(tenant)); err != nil {
		return nil, storageStatus(err)
	} else if !found {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", tenant)
	}
	root, err := quotaRoot(v.r, quotaTenant, tenant)
	if err != nil {
		return nil, storageStatus(err)
	}
	resp.Roots = append(resp.Roots, root)
	return resp, nil
}
