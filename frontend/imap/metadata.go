package imap

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/imap/imapresp"
	"github.com/strata-mail/strata/frontend/imap/imapwire"
	"github.com/strata-mail/strata/proto/metadatapb"
)

// Annotations (RFC 5464 METADATA and METADATA-SERVER). The metadata service keeps the
// entries, checks names, rights (RFC 5464 3.3) and limits in the replicated state, and
// answers DEPTH and MAXSIZE (proto/metadata.proto, "annotations"); the engine resolves the
// mailbox name, adds the server's /shared/admin from Config.AdminURI, checks values of
// /private/specialuse as CREATE checks USE (RFC 6154 4), and writes the METADATA responses
// and response codes. Unsolicited METADATA responses (RFC 5464 4.4.2) are not sent, so
// ENABLE does not take METADATA.

// The refusals of SetMetadata that carry a METADATA response code, and the ErrorInfo
// metadata key of the size a MAXSIZE refusal accepts (metadata/annotations.go, whose
// constants these mirror).
const (
	reasonMetadataMaxSize   = "METADATA_MAXSIZE"
	reasonMetadataTooMany   = "METADATA_TOOMANY"
	reasonMetadataNoPrivate = "METADATA_NOPRIVATE"
	infoMaxSize             = "max_size"
)

// maxMetadataValue mirrors metadata.MaxAnnotationValue, the largest value of one entry: a
// SETMETADATA whose literal is too long to be read at all is refused with it (RFC 5464 4.3).
const maxMetadataValue = 16 << 10

// entrySpecialUse is the METADATA entry of a mailbox's special-use attribute (RFC 6154 4).
const entrySpecialUse = "/private/specialuse"

// metadataDepths maps the DEPTH option to the service's.
var metadataDepths = map[imapwire.MetadataDepth]metadatapb.MetadataDepth{
	imapwire.DepthZero:     metadatapb.MetadataDepth_METADATA_DEPTH_ZERO,
	imapwire.DepthOne:      metadatapb.MetadataDepth_METADATA_DEPTH_ONE,
	imapwire.DepthInfinity: metadatapb.MetadataDepth_METADATA_DEPTH_INFINITY,
}

// metadataTarget is what a METADATA command names: the server (an empty mailbox name, RFC
// 5464 4.1) or a mailbox.
type metadataTarget struct {
	server bool
	ref    mailboxRef
}

// metadataTargetIn resolves the mailbox argument; a namespace level is no mailbox.
func (c *conn) metadataTargetIn(raw, verb string) (metadataTarget, error) {
	if raw == "" {
		return metadataTarget{server: true}, nil
	}
	ref, err := c.mailboxRefIn(raw)
	if err != nil {
		return metadataTarget{}, err
	}
	if ref.node {
		return metadataTarget{}, no(imapresp.CodeNonExistent, verb+" "+strconv.Quote(ref.full)+": mailbox does not exist")
	}
	return metadataTarget{ref: ref}, nil
}

// account is the owner a request about the target names: the session's account for the
// server (the server is the session's tenant), the mailbox's owner otherwise.
func (t metadataTarget) account(c *conn) string {
	if t.server {
		return c.accountName()
	}
	return t.ref.owner
}

// cmdGetMetadata: GETMETADATA (RFC 5464 4.2), answered with one METADATA response holding
// every entry (4.4.1) and, when MAXSIZE left values out, OK [METADATA LONGENTRIES n]
// (4.2.1).
func (c *conn) cmdGetMetadata(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.GetMetadataArgs)
	target, err := c.metadataTargetIn(args.Mailbox, "getmetadata")
	if err != nil {
		return err
	}
	req := &metadatapb.GetMetadataRequest{
		User: c.accountName(), Account: target.account(c), Name: target.ref.name, Server: target.server,
		Entries: args.Entries, Depth: metadataDepths[args.Depth],
	}
	if target.server {
		req.ServerAdmin = c.srv.cfg.AdminURI
	}
	if args.MaxSize != nil {
		size := uint64(*args.MaxSize)
		req.MaxSize = &size
	}
	var resp *metadatapb.GetMetadataResponse
	err = c.withRetry(func(ctx context.Context) error {
		var err error
		resp, err = c.srv.cfg.Metadata.GetMetadata(ctx, req)
		return err
	})
	if err != nil {
		return metadataStatus(err, "getmetadata "+strconv.Quote(args.Mailbox))
	}
	if len(resp.GetEntries()) > 0 {
		entries := make([]imapresp.MetadataEntry, len(resp.GetEntries()))
		for i, e := range resp.GetEntries() {
			entries[i] = imapresp.MetadataEntry{Name: e.GetName(), Value: e.GetValue()}
		}
		mailbox := "" // the server's entries
		if !target.server {
			mailbox = c.mailboxOut(target.ref.full)
		}
		c.bw.Write(imapresp.AppendMetadata(nil, c.encoder(), mailbox, entries))
	}
	if n := resp.GetLongestOmitted(); n > 0 {
		return ok(imapresp.MetadataLongEntriesCode(n), "GETMETADATA completed")
	}
	return nil
}

// cmdSetMetadata: SETMETADATA (RFC 5464 4.3), all entries or none. A refusal for size,
// count or private entries carries its METADATA response code.
func (c *conn) cmdSetMetadata(cmd *imapwire.Command) error {
	args := cmd.Args.(*imapwire.SetMetadataArgs)
	target, err := c.metadataTargetIn(args.Mailbox, "setmetadata")
	if err != nil {
		return err
	}
	req := &metadatapb.SetMetadataRequest{
		RequestId: newRequestID(), User: c.accountName(), Account: target.account(c), Name: target.ref.name, Server: target.server,
	}
	for _, e := range args.Entries {
		entry := &metadatapb.MetadataEntry{Name: e.Name}
		if !e.Nil {
			entry.Value = e.Value
			if entry.Value == nil {
				entry.Value = []byte{}
			}
		}
		if !target.server && e.Name == entrySpecialUse && !e.Nil {
			if entry.Value, err = specialUseValue(e.Value); err != nil {
				return err
			}
		}
		req.Entries = append(req.Entries, entry)
	}
	err = c.withRetry(func(ctx context.Context) error {
		_, err := c.srv.cfg.Metadata.SetMetadata(ctx, req)
		return err
	})
	if err != nil {
		return metadataStatus(err, "setmetadata "+strconv.Quote(args.Mailbox))
	}
	return nil
}

// specialUseValue checks a value of /private/specialuse as CREATE checks its USE list (RFC
// 6154 4 asks for the same checks): one attribute that a mailbox may be created with, or
// none. It returns the attribute as RFC 6154 spells it.
func specialUseValue(v []byte) ([]byte, error) {
	attrs := strings.Fields(string(v))
	switch {
	case len(attrs) == 0:
		return []byte{}, nil
	case len(attrs) > 1:
		return nil, no(imapresp.CodeUseAttr, "One special-use attribute per mailbox") // RFC 6154 3
	}
	i := slices.IndexFunc(creatableSpecialUses, func(su string) bool { return strings.EqualFold(su, attrs[0]) })
	if i < 0 {
		return nil, no(imapresp.CodeUseAttr, "Special-use attribute "+attrs[0]+" cannot be set")
	}
	return []byte(creatableSpecialUses[i]), nil
}

// metadataStatus answers a refused METADATA call: the METADATA response codes of RFC 5464
// 4.3 for the refusals that have one, rpcStatus's answers otherwise (a mailbox without
// the rights of RFC 5464 3.3 is NO [NOPERM], an invisible one NO [NONEXISTENT]).
func metadataStatus(err error, what string) error {
	if st, isStatus := status.FromError(err); isStatus {
		for _, d := range st.Details() {
			info, isInfo := d.(*errdetails.ErrorInfo)
			if !isInfo {
				continue
			}
			switch info.GetReason() {
			case reasonMetadataMaxSize:
				if n, perr := strconv.ParseUint(info.GetMetadata()[infoMaxSize], 10, 64); perr == nil {
					return no(imapresp.MetadataMaxSizeCode(n), what+": value too large")
				}
			case reasonMetadataTooMany:
				return no(imapresp.MetadataTooMany, what+": too many entries")
			case reasonMetadataNoPrivate:
				return no(imapresp.MetadataNoPrivate, what+": no private entries here")
			}
		}
	}
	return rpcStatus(err, imapresp.CodeNonExistent, what)
}

// metadataLiteralRefusal answers a SETMETADATA whose literal is longer than any literal the
// engine reads: no value of that size can be set (RFC 5464 4.3: NO [METADATA MAXSIZE n]).
// It is nil for any other command.
func metadataLiteralRefusal(buf []byte) *imapStatus {
	if cmd, _ := imapwire.ParseCommand(buf); cmd == nil || cmd.Name != "SETMETADATA" {
		return nil
	}
	return no(imapresp.MetadataMaxSizeCode(maxMetadataValue), "SETMETADATA: value too large")
}
