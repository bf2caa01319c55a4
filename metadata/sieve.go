package metadata

import (
	"context"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Sieve scripts (RFC 5228), stored for ManageSieve (RFC 5804), `strata sieve` and delivery.
// The store keeps the bytes the caller gives; compiling and checking a script is the
// caller's (package sieve), before it puts one, so that a script that does not compile is
// refused at upload and never skipped at delivery.
//
// Owners are accounts and, for the global scripts of a tenant (RFC 6609 :global, and those
// delivery runs before and after the user's), the tenant's pseudo-owner "tenant:NAME".
// Keys (see keys.go):
//
//	'v' owner 0x00 name  -> SieveScript (with its content; active is not stored)
//	'w' owner            -> the name of the account's active script (RFC 5804 2.8)
//
// An account has at most one active script, and it exists: DeleteSieveScript refuses the
// active script (RFC 5804 2.10), RenameSieveScript moves the mark with it (RFC 5804 2.11.1).
// The tenant's DeliverySettings bound a script's size and an owner's number of scripts;
// scripts go with their account and tenant.
const (
	prefixSieve       = 'v'
	prefixSieveActive = 'w'
	// maxSieveName: RFC 5804 1.6 has servers take names of 128 characters, up to 512
	// octets in UTF-8; a longer name is refused, never truncated.
	maxSieveName = 512
	phaseBefore  = "before"
	phaseAfter   = "after"
)

func sievePrefix(owner string) []byte { return append(strKey(prefixSieve, owner), 0) }

func sieveKey(owner, name string) []byte { return append(sievePrefix(owner), name...) }

func sieveActiveKey(owner string) []byte { return strKey(prefixSieveActive, owner) }

// checkSieveName applies RFC 5804 1.6: at least one octet, UTF-8 in Unicode NFC (RFC 5198
// Net-Unicode), none of U+0000-001F, U+007F, U+0080-009F, U+2028, U+2029.
func checkSieveName(name string) error {
	if name == "" || len(name) > maxSieveName {
		return errInvalid("sieve script name of %d octets: from 1 to %d", len(name), maxSieveName)
	}
	if !utf8.ValidString(name) || !norm.NFC.IsNormalString(name) {
		return errInvalid("sieve script name %q is not UTF-8 in Unicode NFC (RFC 5804 1.6)", name)
	}
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return errInvalid("sieve script name %q has a character RFC 5804 1.6 prohibits (U+%04X)", name, r)
		}
	}
	return nil
}

// sieveOwner returns the owner of a request's scripts and its tenant: the account, or with
// account empty the tenant's pseudo-owner.
func sieveOwner(r reader, account, tenant string) (owner, tenantName string, err error) {
	switch {
	case account != "" && tenant != "":
		return "", "", errInvalid("sieve scripts: give an account or a tenant, not both")
	case account != "":
		email, valid := NormalizeEmail(account)
		if !valid {
			return "", "", errNotFound("account %q not found", account)
		}
		rec := &metadatapb.AccountRecord{}
		if found, err := getProto(r, accountKey(email), rec); err != nil {
			return "", "", err
		} else if !found {
			return "", "", errNotFound("account %q not found", account)
		}
		return email, rec.GetAccount().GetTenant(), nil
	case tenant != "":
		if _, found, err := getRaw(r, tenantKey(tenant)); err != nil {
			return "", "", err
		} else if !found {
			return "", "", errNotFound("tenant %q not found", tenant)
		}
		return tenantOwner(tenant), tenant, nil
	}
	return "", "", errInvalid("sieve scripts: no account or tenant")
}

func activeSieveName(r reader, owner string) (string, error) {
	v, _, err := getRaw(r, sieveActiveKey(owner))
	return string(v), err
}

// sieveScript reads one script; withContent false leaves its content out.
func sieveScript(r reader, owner, name string, withContent bool) (*metadatapb.SieveScript, bool, error) {
	s := &metadatapb.SieveScript{}
	found, err := getProto(r, sieveKey(owner, name), s)
	if err != nil || !found {
		return nil, false, err
	}
	if !withContent {
		s.Content = nil
	}
	if s.GetAccount() != "" {
		active, err := activeSieveName(r, owner)
		if err != nil {
			return nil, false, err
		}
		s.Active = active == name
	}
	return s, true, nil
}

// sieveScripts lists an owner's scripts by name.
func sieveScripts(r reader, owner string, withContent bool) ([]*metadatapb.SieveScript, error) {
	active, err := activeSieveName(r, owner)
	if err != nil {
		return nil, err
	}
	prefix := sievePrefix(owner)
	var out []*metadatapb.SieveScript
	err = scan(r, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		s := &metadatapb.SieveScript{}
		if err := proto.Unmarshal(v, s); err != nil {
			return false, fmt.Errorf("decode sieve script %q: %w", k, err)
		}
		if !withContent {
			s.Content = nil
		}
		s.Active = s.GetAccount() != "" && s.GetName() == active
		out = append(out, s)
		return true, nil
	})
	return out, err
}

func errSieve(code codes.Code, reason, format string, args ...any) error {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...), reason: reason}
}

func sieveResult(s *metadatapb.SieveScript) *metadatapb.CommandResult {
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_SieveScript{SieveScript: s}}
}

func (c *cmdCtx) putSieveScript(req *metadatapb.PutSieveScriptRequest) (*metadatapb.CommandResult, error) {
	owner, tenant, err := sieveOwner(c.tx, req.GetAccount(), req.GetTenant())
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if err := checkSieveName(name); err != nil {
		return nil, err
	}
	account := ""
	if req.GetAccount() != "" {
		account = owner
	}
	switch phase := req.GetPhase(); {
	case account != "" && phase != "":
		return nil, errInvalid("an account's sieve script has no phase; only a tenant's global scripts run before or after")
	case phase != "" && phase != phaseBefore && phase != phaseAfter:
		return nil, errInvalid("sieve script phase %q: want before, after or none", phase)
	}
	settings, err := deliverySettings(c.tx, tenant)
	if err != nil {
		return nil, err
	}
	if size := len(req.GetContent()); size > int(settings.GetSieveMaxScriptBytes()) {
		// RFC 5804 1.3 QUOTA/MAXSIZE.
		return nil, errSieve(codes.ResourceExhausted, metadatapb.SieveMaxSizeReason, "sieve script of %d bytes: at most %d", size, settings.GetSieveMaxScriptBytes())
	}
	if _, exists, err := getRaw(c.tx, sieveKey(owner, name)); err != nil {
		return nil, err
	} else if !exists {
		scripts, err := sieveScripts(c.tx, owner, false)
		if err != nil {
			return nil, err
		}
		if len(scripts) >= int(settings.GetSieveMaxScripts()) {
			// RFC 5804 1.3 QUOTA/MAXSCRIPTS.
			return nil, errSieve(codes.ResourceExhausted, metadatapb.SieveMaxScriptsReason, "at most %d sieve scripts", settings.GetSieveMaxScripts())
		}
	}
	s := &metadatapb.SieveScript{
		Account: account, Tenant: tenant, Name: name, Content: req.GetContent(), Phase: req.GetPhase(),
		Size: uint64(len(req.GetContent())), UpdatedUnix: c.now / 1e9,
	}
	c.tx.setProto(sieveKey(owner, name), s)
	// RFC 5804 2.6: replacing the active script keeps it active.
	out, _, err := sieveScript(c.tx, owner, name, false)
	if err != nil {
		return nil, err
	}
	return sieveResult(out), nil
}

func (c *cmdCtx) deleteSieveScript(req *metadatapb.DeleteSieveScriptRequest) (*metadatapb.CommandResult, error) {
	owner, _, err := sieveOwner(c.tx, req.GetAccount(), req.GetTenant())
	if err != nil {
		return nil, err
	}
	s, found, err := sieveScript(c.tx, owner, req.GetName(), false)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errNotFound("no sieve script %q", req.GetName())
	}
	if s.GetActive() {
		// RFC 5804 2.10: the active script cannot be deleted.
		return nil, errSieve(codes.FailedPrecondition, metadatapb.SieveActiveReason, "sieve script %q is active", req.GetName())
	}
	c.tx.mustDelete(sieveKey(owner, req.GetName()))
	return okResult(), nil
}

func (c *cmdCtx) renameSieveScript(req *metadatapb.RenameSieveScriptRequest) (*metadatapb.CommandResult, error) {
	owner, _, err := sieveOwner(c.tx, req.GetAccount(), req.GetTenant())
	if err != nil {
		return nil, err
	}
	if err := checkSieveName(req.GetNewName()); err != nil {
		return nil, err
	}
	s := &metadatapb.SieveScript{}
	if found, err := getProto(c.tx, sieveKey(owner, req.GetName()), s); err != nil {
		return nil, err
	} else if !found {
		return nil, errNotFound("no sieve script %q", req.GetName())
	}
	if _, taken, err := getRaw(c.tx, sieveKey(owner, req.GetNewName())); err != nil {
		return nil, err
	} else if taken {
		// RFC 5804 2.11.1 ALREADYEXISTS.
		return nil, errExists("sieve script %q already exists", req.GetNewName())
	}
	active, err := activeSieveName(c.tx, owner)
	if err != nil {
		return nil, err
	}
	s.Name = req.GetNewName()
	c.tx.mustDelete(sieveKey(owner, req.GetName()))
	c.tx.setProto(sieveKey(owner, s.GetName()), s)
	if s.GetAccount() != "" && active == req.GetName() {
		// RFC 5804 2.11.1: the active script stays active under its new name.
		c.tx.mustSet(sieveActiveKey(owner), []byte(s.GetName()))
	}
	out, _, err := sieveScript(c.tx, owner, s.GetName(), false)
	if err != nil {
		return nil, err
	}
	return sieveResult(out), nil
}

func (c *cmdCtx) setActiveSieveScript(req *metadatapb.SetActiveSieveScriptRequest) (*metadatapb.CommandResult, error) {
	if req.GetAccount() == "" {
		return nil, errInvalid("set active sieve script: no account (a tenant's global scripts have phases instead)")
	}
	owner, _, err := sieveOwner(c.tx, req.GetAccount(), "")
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if name == "" {
		// RFC 5804 2.8: the empty name deactivates every script.
		c.tx.mustDelete(sieveActiveKey(owner))
	} else {
		if _, found, err := getRaw(c.tx, sieveKey(owner, name)); err != nil {
			return nil, err
		} else if !found {
			return nil, errNotFound("no sieve script %q", name)
		}
		c.tx.mustSet(sieveActiveKey(owner), []byte(name))
	}
	return &metadatapb.CommandResult{Result: &metadatapb.CommandResult_SetActiveSieveScript{SetActiveSieveScript: &metadatapb.SetActiveSieveScriptResponse{Active: name}}}, nil
}

// forgetSieveScripts deletes the scripts of an account or tenant that goes.
func (c *cmdCtx) forgetSieveScripts(owner string) error {
	prefix := sievePrefix(owner)
	var keys [][]byte
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		keys = append(keys, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		c.tx.mustDelete(k)
	}
	c.tx.mustDelete(sieveActiveKey(owner))
	return nil
}

// activeSieveScripts is what delivery to an account runs, with contents.
func (v *view) activeSieveScripts(account string) (*metadatapb.GetActiveSieveScriptResponse, error) {
	if account == "" {
		return nil, errInvalid("get active sieve script: no account")
	}
	owner, tenant, err := sieveOwner(v.r, account, "")
	if err != nil {
		return nil, err
	}
	resp := &metadatapb.GetActiveSieveScriptResponse{Tenant: tenant}
	active, err := activeSieveName(v.r, owner)
	if err != nil {
		return nil, err
	}
	if active != "" {
		if resp.Script, _, err = sieveScript(v.r, owner, active, true); err != nil {
			return nil, err
		}
	}
	globals, err := sieveScripts(v.r, tenantOwner(tenant), true)
	if err != nil {
		return nil, err
	}
	for _, g := range globals {
		switch g.GetPhase() {
		case phaseBefore:
			resp.Before = append(resp.Before, g)
		case phaseAfter:
			resp.After = append(resp.After, g)
		}
	}
	return resp, nil
}

// The Sieve RPCs.

func (s *Service) PutSieveScript(ctx context.Context, req *metadatapb.PutSieveScriptRequest) (*metadatapb.SieveScript, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_PutSieveScript{PutSieveScript: req}}, (*metadatapb.CommandResult).GetSieveScript)
}

func (s *Service) DeleteSieveScript(ctx context.Context, req *metadatapb.DeleteSieveScriptRequest) (*metadatapb.DeleteSieveScriptResponse, error) {
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_DeleteSieveScript{DeleteSieveScript: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.DeleteSieveScriptResponse{}, nil
}

func (s *Service) RenameSieveScript(ctx context.Context, req *metadatapb.RenameSieveScriptRequest) (*metadatapb.SieveScript, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_RenameSieveScript{RenameSieveScript: req}}, (*metadatapb.CommandResult).GetSieveScript)
}

func (s *Service) SetActiveSieveScript(ctx context.Context, req *metadatapb.SetActiveSieveScriptRequest) (*metadatapb.SetActiveSieveScriptResponse, error) {
	return proposeFor(ctx, s, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetActiveSieveScript{SetActiveSieveScript: req}}, (*metadatapb.CommandResult).GetSetActiveSieveScript)
}

func (s *Service) GetSieveScript(ctx context.Context, req *metadatapb.GetSieveScriptRequest) (*metadatapb.SieveScript, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	owner, _, err := sieveOwner(v.r, req.GetAccount(), req.GetTenant())
	if err != nil {
		return nil, readStatus(err)
	}
	script, found, err := sieveScript(v.r, owner, req.GetName(), true)
	if err != nil {
		return nil, storageStatus(err)
	}
	if !found {
		return nil, readStatus(errNotFound("no sieve script %q", req.GetName()))
	}
	return script, nil
}

func (s *Service) ListSieveScripts(ctx context.Context, req *metadatapb.ListSieveScriptsRequest) (*metadatapb.ListSieveScriptsResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	owner, tenant, err := sieveOwner(v.r, req.GetAccount(), req.GetTenant())
	if err != nil {
		return nil, readStatus(err)
	}
	scripts, err := sieveScripts(v.r, owner, false)
	if err != nil {
		return nil, storageStatus(err)
	}
	settings, err := deliverySettings(v.r, tenant)
	if err != nil {
		return nil, storageStatus(err)
	}
	return &metadatapb.ListSieveScriptsResponse{Scripts: scripts, MaxScriptBytes: settings.GetSieveMaxScriptBytes(), MaxScripts: settings.GetSieveMaxScripts()}, nil
}

func (s *Service) GetActiveSieveScript(ctx context.Context, req *metadatapb.GetActiveSieveScriptRequest) (*metadatapb.GetActiveSieveScriptResponse, error) {
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp, err := v.activeSieveScripts(req.GetAccount())
	if err != nil {
		return nil, readStatus(err)
	}
	return resp, nil
}
