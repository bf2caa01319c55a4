package metadata

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// Annotations (RFC 5464 METADATA), as proto/metadata.proto "annotations" states the
// contract.
//
//   - Scopes. An entry belongs to a mailbox, by id, so that it follows a RENAME for free
//     (RFC 5464 4.1), or to the server, which for a user is its tenant: no entry of one
//     tenant is ever visible to another. Names are stored lower-case (RFC 5464 3.2: entry
//     names are case-insensitive).
//   - Private entries (/private/...) are kept per user: on a mailbox of another owner they
//     are the acting user's, never the owner's (RFC 5464 3.2). Shared entries (/shared/...)
//     have one value per mailbox or tenant.
//   - Rights (RFC 5464 3.3): with RFC 4314, the entries of a mailbox, private or shared,
//     read or written, need l and any one of r, s, w, i and p; server entries need none.
//   - Limits are checked by the command (so every replica decides alike): one value holds at
//     most maxAnnotationValue octets, and the entries charged to one owner (private ones to
//     their user, shared ones of a mailbox to its owner, shared server ones to the tenant)
//     number at most maxAnnotationsPerOwner and hold at most maxAnnotationBytes octets of
//     names and values. A SetMetadata is all or nothing (RFC 5464 4.3).
//   - Lifetime. The entries of a mailbox go with it (RFC 5464 4.1: a new mailbox of the
//     same name does not inherit them), a user's private entries with the account, a
//     tenant's server entries with the tenant.
//   - Computed entries: a mailbox's /private/specialuse is its special-use attribute (RFC
//     6154 4), the server's /shared/admin the URI the frontend's operator configured (RFC
//     5464 3.2.1.1, read-only). Neither is stored as an entry nor charged.
//
// Keys (keys.go):
//
//	'Y' 'm' mailbox id, user 0x00 name     -> value: an entry of a mailbox; user is "" for
//	                                          /shared entries
//	'Y' 's' tenant 0x00 user 0x00 name     -> value: a server entry of the tenant
//	'y' user 0x00 mailbox id               -> uint64: how many private entries user has on
//	                                          the mailbox, so that they go with the account
//	'Z' owner                              -> AnnotationUsage charged to an account or a
//	                                          "tenant:NAME"
const (
	prefixAnnotation      = 'Y'
	prefixAnnotationIndex = 'y'
	prefixAnnotationUsage = 'Z'
	annotationMailbox     = 'm'
	annotationServer      = 's'
)

// Limits of annotations. RFC 5464 4.1 asks a server to accept values of at least 1024 octets
// and at least 10 entries per mailbox or server. They are part of the state machine: a
// replica with other limits would decide commands differently.
const (
	// MaxAnnotationValue is the largest value of one entry, in octets.
	MaxAnnotationValue = 16 << 10
	// maxAnnotationsPerOwner and maxAnnotationBytes bound the entries charged to one owner.
	maxAnnotationsPerOwner = 1000
	maxAnnotationBytes     = 1 << 20
	// maxAnnotationName bounds an entry name.
	maxAnnotationName = 1024
)

// Reasons of the refusals of SetMetadata (ErrorInfo, domain errorDomain) that the frontend
// answers with the METADATA response codes of RFC 5464 4.3.
const (
	ReasonMetadataMaxSize   = "METADATA_MAXSIZE"
	ReasonMetadataTooMany   = "METADATA_TOOMANY"
	ReasonMetadataNoPrivate = "METADATA_NOPRIVATE"
	// ErrorInfoMaxSize is the ErrorInfo metadata key of the largest value a
	// METADATA_MAXSIZE refusal would have accepted.
	ErrorInfoMaxSize = "max_size"
)

// The computed entries.
const (
	entrySpecialUse = "/private/specialuse" // RFC 6154 4
	entryAdmin      = "/shared/admin"       // RFC 5464 3.2.1.1
	entryPrivate    = "/private"
	entryShared     = "/shared"
)

func errMetadataMaxSize(allowed uint64, format string, args ...any) error {
	e := newCmdError(codes.ResourceExhausted, format, args...).(*cmdError)
	e.reason, e.maxSize = ReasonMetadataMaxSize, allowed
	return e
}

func errMetadataTooMany(format string, args ...any) error {
	e := newCmdError(codes.ResourceExhausted, format, args...).(*cmdError)
	e.reason = ReasonMetadataTooMany
	return e
}

func errNoAnnotationRight() error {
	return newCmdError(codes.PermissionDenied, "permission denied: annotations need the l right and one of r, s, w, i, p (RFC 5464 3.3)")
}

// checkEntryName lower-cases an entry name and checks it (RFC 5464 3.2): it starts with
// /private or /shared, has no "*", "%", control or non-ASCII character, no "//" and no
// trailing "/". An entry that holds a value (stored) also has at least two components, and
// at least four under /private/vendor and /shared/vendor; a name that only asks for the
// entries below it (a DEPTH root) may be shorter, down to /private and /shared alone.
func checkEntryName(raw string, stored bool) (string, error) {
	name := strings.ToLower(raw)
	if len(name) > maxAnnotationName {
		return "", errInvalid("entry name longer than %d octets", maxAnnotationName)
	}
	for i := 0; i < len(name); i++ {
		// RFC 5464 3.2 forbids 0x00 to 0x19, "*", "%" and non-ASCII; the controls up to
		// 0x1f and DEL, which it strongly discourages, are refused too.
		if c := name[i]; c < 0x20 || c >= 0x7f || c == '*' || c == '%' {
			return "", errInvalid("entry name %q holds a character RFC 5464 3.2 forbids", raw)
		}
	}
	components := strings.Split(name, "/")
	if components[0] != "" || len(components) < 2 || components[1] != "private" && components[1] != "shared" {
		return "", errInvalid("entry name %q does not start with /private or /shared (RFC 5464 3.2)", raw)
	}
	if slices.Contains(components[1:], "") {
		return "", errInvalid("entry name %q has an empty component (RFC 5464 3.2)", raw)
	}
	if stored && (len(components) < 3 || components[2] == "vendor" && len(components) < 5) {
		return "", errInvalid("entry name %q has too few components (RFC 5464 3.2)", raw)
	}
	return name, nil
}

func isPrivateEntry(name string) bool { return strings.HasPrefix(name, entryPrivate) }

// mailboxAnnotationsPrefix is the prefix of every entry of a mailbox.
func mailboxAnnotationsPrefix(mailbox uint64) []byte {
	k := make([]byte, 0, 10)
	return binary.BigEndian.AppendUint64(append(k, prefixAnnotation, annotationMailbox), mailbox)
}

// annotationScope is where entries live: a mailbox, or a tenant's server entries.
type annotationScope struct {
	mailbox *metadatapb.MailboxRecord // nil: the server
	tenant  string
	// owner is charged for the shared entries: the mailbox owner, or the tenant.
	owner string
}

// prefix is the prefix of the entries of user in the scope ("" for shared entries).
func (s annotationScope) prefix(user string) []byte {
	var k []byte
	if s.mailbox != nil {
		k = mailboxAnnotationsPrefix(s.mailbox.GetMailbox().GetId())
	} else {
		k = append(append([]byte{prefixAnnotation, annotationServer}, s.tenant...), 0)
	}
	return append(append(k, user...), 0)
}

// holder is the user whose entries a name is among: user for a private one, "" for shared.
func holder(name, user string) string {
	if isPrivateEntry(name) {
		return user
	}
	return ""
}

// charged is whom an entry of holder is charged to.
func (s annotationScope) charged(holder string) string {
	if holder != "" {
		return holder
	}
	return s.owner
}

func annotationIndexPrefix(user string) []byte { return append(strKey(prefixAnnotationIndex, user), 0) }

func annotationIndexKey(user string, mailbox uint64) []byte {
	return binary.BigEndian.AppendUint64(annotationIndexPrefix(user), mailbox)
}

func annotationUsageKey(owner string) []byte { return strKey(prefixAnnotationUsage, owner) }

// annotationAccess checks the rights RFC 5464 3.3 asks for the entries of a mailbox, given
// user's rights on it: NotFound when the mailbox is invisible (RFC 4314 6), PermissionDenied
// without l or without any of r, s, w, i, p.
func annotationAccess(granted rights) error {
	if !granted.visible() {
		return errNoMailbox()
	}
	if !granted.has(rightLookup) || granted&(rightRead|rightSeen|rightWrite|rightInsert|rightPost) == 0 {
		return errNoAnnotationRight()
	}
	return nil
}

// serverScope returns the server entries of the tenant of owner (an account or a tenant
// pseudo-owner), of which user must be a member.
func serverScope(r reader, user, owner string) (annotationScope, error) {
	tenant, found, err := ownerTenant(r, owner)
	if err != nil {
		return annotationScope{}, err
	}
	if found && user != "" {
		if found, err = sameTenant(r, user, owner); err != nil {
			return annotationScope{}, err
		}
	}
	if !found {
		return annotationScope{}, errNotFound("no server for %q", owner)
	}
	return annotationScope{tenant: tenant, owner: tenantOwner(tenant)}, nil
}

// annotationUsage returns the usage charged to owner as of this command, loading it once.
func (c *cmdCtx) annotationUsage(owner string) (*metadatapb.AnnotationUsage, error) {
	if u, found := c.annotationUsed[owner]; found {
		return u, nil
	}
	u := &metadatapb.AnnotationUsage{}
	if _, err := getProto(c.tx, annotationUsageKey(owner), u); err != nil {
		return nil, err
	}
	if c.annotationUsed == nil {
		c.annotationUsed = map[string]*metadatapb.AnnotationUsage{}
	}
	c.annotationUsed[owner] = u
	return u, nil
}

// chargeAnnotation adds an entry of size octets (name and value) to owner's usage, or with
// a negative count takes one away.
func (c *cmdCtx) chargeAnnotation(owner string, count int, size uint64) (*metadatapb.AnnotationUsage, error) {
	u, err := c.annotationUsage(owner)
	if err != nil {
		return nil, err
	}
	if count > 0 {
		u.Entries++
		u.Bytes += size
	} else {
		u.Entries -= min(u.Entries, 1)
		u.Bytes -= min(u.Bytes, size)
	}
	return u, nil
}

// writeAnnotationUsage stores the usage the command changed, in owner order; an owner with
// nothing left loses its record.
func (c *cmdCtx) writeAnnotationUsage() {
	owners := make([]string, 0, len(c.annotationUsed))
	for owner := range c.annotationUsed {
		owners = append(owners, owner)
	}
	slices.Sort(owners)
	for _, owner := range owners {
		if u := c.annotationUsed[owner]; u.GetEntries() == 0 && u.GetBytes() == 0 {
			c.tx.mustDelete(annotationUsageKey(owner))
		} else {
			c.tx.setProto(annotationUsageKey(owner), u)
		}
	}
}

// dropAnnotationUsage forgets the usage of an owner that is deleted.
func (c *cmdCtx) dropAnnotationUsage(owner string) {
	if c.annotationUsed != nil {
		delete(c.annotationUsed, owner)
	}
	c.tx.mustDelete(annotationUsageKey(owner))
}

// indexPrivate counts one private entry of user on a mailbox more (delta 1) or less (-1).
func (c *cmdCtx) indexPrivate(user string, mailbox uint64, delta int) error {
	key := annotationIndexKey(user, mailbox)
	v, _, err := getRaw(c.tx, key)
	if err != nil {
		return err
	}
	n := decodeUint64(v)
	if delta > 0 {
		n++
	} else {
		n -= min(n, 1)
	}
	if n == 0 {
		c.tx.mustDelete(key)
	} else {
		c.tx.mustSet(key, encodeUint64(n))
	}
	return nil
}

// checkAnnotationLimits refuses a command that left owner's entries over a limit after it
// set a value of valueLen octets: TOOMANY for the count, MAXSIZE with the largest value that
// would have fitted for the octets (RFC 5464 4.3).
func checkAnnotationLimits(owner string, u *metadatapb.AnnotationUsage, valueLen uint64) error {
	if u.GetEntries() > maxAnnotationsPerOwner {
		return errMetadataTooMany("the entries of %s would pass %d (RFC 5464 4.3 TOOMANY)", owner, maxAnnotationsPerOwner)
	}
	if over := u.GetBytes(); over > maxAnnotationBytes {
		allowed := valueLen - min(valueLen, over-maxAnnotationBytes)
		return errMetadataMaxSize(allowed, "the entries of %s would hold more than %d octets", owner, maxAnnotationBytes)
	}
	return nil
}

// setMetadata implements SETMETADATA (RFC 5464 4.3): it sets and removes entries of a
// mailbox or of the server, all or nothing.
func (c *cmdCtx) setMetadata(req *metadatapb.SetMetadataRequest) (*metadatapb.CommandResult, error) {
	user, owner := req.GetUser(), req.GetAccount()
	if err := c.checkOwner(user, owner); err != nil {
		return nil, err
	}
	var scope annotationScope
	var box *mailboxState
	if req.GetServer() {
		var err error
		if scope, err = serverScope(c.tx, user, owner); err != nil {
			return nil, err
		}
	} else {
		var err error
		if box, err = c.annotationMailbox(user, owner, req.GetMailboxId(), req.GetName()); err != nil {
			return nil, err
		}
		scope = annotationScope{mailbox: box.rec, owner: box.rec.GetAccount()}
	}
	entries, err := lastValues(req.GetEntries())
	if err != nil {
		return nil, err
	}
	var removals, sets []*metadatapb.MetadataEntry
	for _, e := range entries {
		name := e.GetName()
		switch {
		case box != nil && name == entrySpecialUse:
			if err := c.setSpecialUse(user, box, e); err != nil {
				return nil, err
			}
			continue
		case box == nil && name == entryAdmin:
			return nil, newCmdError(codes.PermissionDenied, "%s is read-only (RFC 5464 3.2.1.1)", entryAdmin)
		case isPrivateEntry(name) && user == "":
			ce := newCmdError(codes.InvalidArgument, "private entries need an acting user (RFC 5464 4.3 NOPRIVATE)").(*cmdError)
			ce.reason = ReasonMetadataNoPrivate
			return nil, ce
		case e.Value != nil && len(e.GetValue()) > MaxAnnotationValue:
			return nil, errMetadataMaxSize(MaxAnnotationValue, "the value of %s is longer than %d octets (RFC 5464 4.3 MAXSIZE)", name, MaxAnnotationValue)
		}
		if e.Value == nil {
			removals = append(removals, e)
		} else {
			sets = append(sets, e)
		}
	}
	// Removals first, so that what they free is there for the values set.
	for _, e := range removals {
		if err := c.removeAnnotation(scope, holder(e.GetName(), user), e.GetName()); err != nil {
			return nil, err
		}
	}
	for _, e := range sets {
		if err := c.putAnnotation(scope, holder(e.GetName(), user), e.GetName(), e.GetValue()); err != nil {
			return nil, err
		}
	}
	return okResult(), nil
}

// lastValues checks the names of entries and keeps the last value of each, in the order of
// those last values.
func lastValues(entries []*metadatapb.MetadataEntry) ([]*metadatapb.MetadataEntry, error) {
	last := map[string]int{}
	names := make([]string, len(entries))
	for i, e := range entries {
		name, err := checkEntryName(e.GetName(), true)
		if err != nil {
			return nil, err
		}
		names[i] = name
		last[name] = i
	}
	var out []*metadatapb.MetadataEntry
	for i, e := range entries {
		if last[names[i]] == i {
			out = append(out, &metadatapb.MetadataEntry{Name: names[i], Value: e.Value})
		}
	}
	return out, nil
}

// annotationMailbox loads the mailbox whose entries a command changes and checks the rights
// of RFC 5464 3.3.
func (c *cmdCtx) annotationMailbox(user, owner string, id uint64, rawName string) (*mailboxState, error) {
	if id == 0 {
		name, err := validMailboxName(rawName)
		if err != nil {
			return nil, err
		}
		if id, err = lookupName(c.tx, owner, name); err != nil {
			return nil, err
		}
		if id == 0 {
			return nil, errNoMailbox()
		}
	}
	ms, granted, err := c.access(user, owner, id, 0)
	if err != nil {
		return nil, err
	}
	if err := annotationAccess(granted); err != nil {
		return nil, err
	}
	return ms, nil
}

// setSpecialUse sets the special-use attribute of a mailbox through its /private/specialuse
// entry (RFC 6154 4): NIL or "" removes it; otherwise it is one attribute, checked as CREATE
// checks it. The attribute is the mailbox's, which every user sees, so only the owner or a
// user with the a right may change it.
func (c *cmdCtx) setSpecialUse(user string, ms *mailboxState, e *metadatapb.MetadataEntry) error {
	granted, err := mailboxRights(c.tx, user, ms.rec)
	if err != nil {
		return err
	}
	if !granted.has(rightAdminister) {
		return errNoRight(rightAdminister)
	}
	value := strings.TrimSpace(string(e.GetValue()))
	if strings.ContainsAny(value, " \t") {
		return errInvalid("a mailbox has one special-use attribute (RFC 6154 4)")
	}
	specialUse, valid := normalizeSpecialUse(value)
	if !valid {
		return errInvalid("unknown special-use attribute %q (RFC 6154 4)", value)
	}
	if ms.box().GetSpecialUse() != specialUse {
		ms.box().SpecialUse = specialUse
		ms.dirty = true
	}
	return nil
}

// putAnnotation sets the entry name of holder in scope to value, charging it; a command that
// goes over a limit is refused.
func (c *cmdCtx) putAnnotation(scope annotationScope, holder, name string, value []byte) error {
	key := append(scope.prefix(holder), name...)
	old, existed, err := getRaw(c.tx, key)
	if err != nil {
		return err
	}
	owner := scope.charged(holder)
	if existed {
		if _, err := c.chargeAnnotation(owner, -1, uint64(len(name)+len(old))); err != nil {
			return err
		}
	} else if holder != "" && scope.mailbox != nil {
		if err := c.indexPrivate(holder, scope.mailbox.GetMailbox().GetId(), 1); err != nil {
			return err
		}
	}
	u, err := c.chargeAnnotation(owner, 1, uint64(len(name)+len(value)))
	if err != nil {
		return err
	}
	if err := checkAnnotationLimits(owner, u, uint64(len(value))); err != nil {
		return err
	}
	c.tx.mustSet(key, value)
	return nil
}

// removeAnnotation removes the entry name of holder in scope, if it is there.
func (c *cmdCtx) removeAnnotation(scope annotationScope, holder, name string) error {
	key := append(scope.prefix(holder), name...)
	old, existed, err := getRaw(c.tx, key)
	if err != nil || !existed {
		return err
	}
	if _, err := c.chargeAnnotation(scope.charged(holder), -1, uint64(len(name)+len(old))); err != nil {
		return err
	}
	if holder != "" && scope.mailbox != nil {
		if err := c.indexPrivate(holder, scope.mailbox.GetMailbox().GetId(), -1); err != nil {
			return err
		}
	}
	c.tx.mustDelete(key)
	return nil
}

// storedAnnotation is one entry as a scan of a mailbox's entries finds it.
type storedAnnotation struct {
	holder, name string
	value        []byte
}

// mailboxAnnotations returns every entry of a mailbox, in key order (by holder, then name).
func mailboxAnnotations(r reader, mailbox uint64) ([]storedAnnotation, error) {
	prefix := mailboxAnnotationsPrefix(mailbox)
	var out []storedAnnotation
	err := scan(r, prefix, prefixEnd(prefix), func(k, v []byte) (bool, error) {
		holder, name, _ := strings.Cut(string(k[len(prefix):]), "\x00")
		out = append(out, storedAnnotation{holder: holder, name: name, value: slices.Clone(v)})
		return true, nil
	})
	return out, err
}

// destroyAnnotations removes the entries of a mailbox that is deleted (RFC 5464 4.1) and
// takes them off what their owners are charged.
func (c *cmdCtx) destroyAnnotations(ms *mailboxState) error {
	id := ms.box().GetId()
	entries, err := mailboxAnnotations(c.tx, id)
	if err != nil {
		return err
	}
	scope := annotationScope{mailbox: ms.rec, owner: ms.rec.GetAccount()}
	for i, e := range entries {
		if _, err := c.chargeAnnotation(scope.charged(e.holder), -1, uint64(len(e.name)+len(e.value))); err != nil {
			return err
		}
		c.tx.mustDelete(append(scope.prefix(e.holder), e.name...))
		if e.holder != "" && (i == 0 || entries[i-1].holder != e.holder) {
			c.tx.mustDelete(annotationIndexKey(e.holder, id))
		}
	}
	return nil
}

// copyAnnotations gives the mailbox to every entry of from, charged as new entries within
// the limits: RENAME of INBOX keeps INBOX's entries and copies them to the new mailbox (RFC
// 5464 4.1).
func (c *cmdCtx) copyAnnotations(from, to *mailboxState) error {
	entries, err := mailboxAnnotations(c.tx, from.box().GetId())
	if err != nil {
		return err
	}
	scope := annotationScope{mailbox: to.rec, owner: to.rec.GetAccount()}
	for _, e := range entries {
		if err := c.putAnnotation(scope, e.holder, e.name, e.value); err != nil {
			return err
		}
	}
	return nil
}

// forgetAnnotator removes the private entries of a deleted account: on every mailbox it
// annotated, and on its tenant's server.
func (c *cmdCtx) forgetAnnotator(user, tenant string) error {
	prefix := annotationIndexPrefix(user)
	var mailboxes []uint64
	err := scan(c.tx, prefix, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
		mailboxes = append(mailboxes, binary.BigEndian.Uint64(k[len(prefix):]))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, id := range mailboxes {
		if err := c.deleteRange(append(append(mailboxAnnotationsPrefix(id), user...), 0)); err != nil {
			return err
		}
		c.tx.mustDelete(annotationIndexKey(user, id))
	}
	return c.deleteRange(annotationScope{tenant: tenant}.prefix(user))
}

// forgetServerAnnotations removes what is left of a deleted tenant's server entries.
func (c *cmdCtx) forgetServerAnnotations(tenant string) error {
	return c.deleteRange(append(append([]byte{prefixAnnotation, annotationServer}, tenant...), 0))
}

// getMetadata answers GETMETADATA (RFC 5464 4.2) on v: for each entry asked for, the entry
// itself (NIL when it has no value and could have one), then with DEPTH the entries below
// it (4.2.2), each once; values over MAXSIZE are left out and the largest of them is
// reported (4.2.1).
func (v *view) getMetadata(user, owner string, req *metadatapb.GetMetadataRequest) (*metadatapb.GetMetadataResponse, error) {
	var scope annotationScope
	var err error
	if req.GetServer() {
		scope, err = serverScope(v.r, user, owner)
	} else {
		var rec *metadatapb.MailboxRecord
		var granted rights
		name := ""
		if req.GetMailboxId() == 0 {
			var valid bool
			if name, valid = NormalizeMailboxName(req.GetName()); !valid {
				return nil, errInvalid("invalid mailbox name %q", req.GetName())
			}
		}
		if rec, granted, err = v.access(user, owner, req.GetMailboxId(), name, 0); err == nil {
			err = annotationAccess(granted)
		}
		scope = annotationScope{mailbox: rec, owner: owner}
	}
	if err != nil {
		return nil, err
	}
	computed := map[string][]byte{}
	if box := scope.mailbox.GetMailbox(); box.GetSpecialUse() != "" {
		computed[entrySpecialUse] = []byte(box.GetSpecialUse())
	}
	if scope.mailbox == nil && req.GetServerAdmin() != "" {
		computed[entryAdmin] = []byte(req.GetServerAdmin())
	}
	resp := &metadatapb.GetMetadataResponse{}
	sent := map[string]bool{}
	add := func(name string, value []byte, found bool) {
		if sent[name] {
			return
		}
		sent[name] = true
		if found && req.MaxSize != nil && uint64(len(value)) > req.GetMaxSize() {
			resp.LongestOmitted = max(resp.LongestOmitted, uint64(len(value)))
			return
		}
		e := &metadatapb.MetadataEntry{Name: name}
		if found {
			// An empty value is "", not NIL: it needs a non-nil slice.
			e.Value = append([]byte{}, value...)
		}
		resp.Entries = append(resp.Entries, e)
	}
	for _, raw := range req.GetEntries() {
		spec, err := checkEntryName(raw, false)
		if err != nil {
			return nil, err
		}
		// An admin call has no private entries, only the computed ones.
		stored := !isPrivateEntry(spec) || user != ""
		prefix := scope.prefix(holder(spec, user))
		value, found := computed[spec]
		if !found && stored {
			if value, found, err = getRaw(v.r, append(prefix, spec...)); err != nil {
				return nil, err
			}
		}
		if _, err := checkEntryName(spec, true); found || err == nil {
			// A DEPTH root that cannot hold a value (/private, /shared/vendor/x) is no
			// entry to answer NIL for.
			add(spec, value, found)
		}
		if req.GetDepth() == metadatapb.MetadataDepth_METADATA_DEPTH_ZERO {
			continue
		}
		within := func(name string) bool {
			rest, under := strings.CutPrefix(name, spec+"/")
			return under && (req.GetDepth() == metadatapb.MetadataDepth_METADATA_DEPTH_INFINITY || !strings.Contains(rest, "/"))
		}
		var below []storedAnnotation
		if stored {
			lower := append(slices.Clone(prefix), spec+"/"...)
			err := scan(v.r, lower, prefixEnd(lower), func(k, val []byte) (bool, error) {
				if name := string(k[len(prefix):]); within(name) {
					below = append(below, storedAnnotation{name: name, value: slices.Clone(val)})
				}
				return true, nil
			})
			if err != nil {
				return nil, err
			}
		}
		for name, value := range computed {
			if within(name) {
				below = append(below, storedAnnotation{name: name, value: value})
			}
		}
		slices.SortFunc(below, func(a, b storedAnnotation) int { return strings.Compare(a.name, b.name) })
		for _, e := range below {
			add(e.name, e.value, true)
		}
	}
	return resp, nil
}

// SetMetadata implements SETMETADATA (RFC 5464 4.3).
func (s *Service) SetMetadata(ctx context.Context, req *metadatapb.SetMetadataRequest) (*metadatapb.SetMetadataResponse, error) {
	if err := normalizeActor(&req.User, &req.Account); err != nil {
		return nil, err
	}
	if _, err := s.propose(ctx, req.GetRequestId(), &metadatapb.Command{Op: &metadatapb.Command_SetMetadata{SetMetadata: req}}); err != nil {
		return nil, err
	}
	return &metadatapb.SetMetadataResponse{}, nil
}

// GetMetadata implements GETMETADATA (RFC 5464 4.2).
func (s *Service) GetMetadata(ctx context.Context, req *metadatapb.GetMetadataRequest) (*metadatapb.GetMetadataResponse, error) {
	user, err := actingUser(req.GetUser())
	if err != nil {
		return nil, err
	}
	if !req.GetServer() && req.GetMailboxId() == 0 && req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "get metadata: give a mailbox name or id, or server")
	}
	v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	defer v.close()
	resp, err := v.getMetadata(user, normalizeOwner(req.GetAccount()), req)
	if err != nil {
		return nil, readStatus(err)
	}
	return resp, nil
}
