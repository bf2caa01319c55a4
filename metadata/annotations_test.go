package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-mail/strata/proto/metadatapb"
)

// entry is an entry name with its value; nil value: NIL.
func entry(name string, value []byte) *metadatapb.MetadataEntry {
	return &metadatapb.MetadataEntry{Name: name, Value: value}
}

// cmdSetMetadata sets entries of owner's mailbox (server: the server of owner's tenant) as
// user; pairs are name, value, ... with the value "NIL" for NIL.
func cmdSetMetadata(user, owner, mailbox string, pairs ...string) *metadatapb.Command {
	req := &metadatapb.SetMetadataRequest{User: user, Account: owner, Name: mailbox, Server: mailbox == ""}
	for i := 0; i+1 < len(pairs); i += 2 {
		var value []byte
		if pairs[i+1] != "NIL" {
			value = []byte(pairs[i+1])
		}
		req.Entries = append(req.Entries, entry(pairs[i], value))
	}
	return &metadatapb.Command{Op: &metadatapb.Command_SetMetadata{SetMetadata: req}}
}

// getMetadata reads entries as GETMETADATA does and renders them "name=value" ("name=NIL"),
// in order.
func (h *harness) getMetadata(req *metadatapb.GetMetadataRequest) (string, uint64, error) {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	resp, err := v.getMetadata(req.GetUser(), req.GetAccount(), req)
	if err != nil {
		return "", 0, err
	}
	var out []string
	for _, e := range resp.GetEntries() {
		if e.Value == nil {
			out = append(out, e.GetName()+"=NIL")
		} else {
			out = append(out, e.GetName()+"="+string(e.GetValue()))
		}
	}
	return strings.Join(out, " "), resp.GetLongestOmitted(), nil
}

// wantMetadata checks what user reads of owner's mailbox (server when mailbox is "").
func (h *harness) wantMetadata(user, owner, mailbox string, depth metadatapb.MetadataDepth, entries []string, want string) {
	h.t.Helper()
	got, _, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: user, Account: owner, Name: mailbox, Server: mailbox == "", Entries: entries, Depth: depth})
	if err != nil {
		h.t.Fatalf("%s reads %v of %q: %v", user, entries, mailbox, err)
	}
	if got != want {
		h.t.Fatalf("%s reads %v of %q (depth %v):\n got %q\nwant %q", user, entries, mailbox, depth, got, want)
	}
}

// refusal returns the ErrorInfo reason and metadata a refused command's result turns into.
func refusal(t *testing.T, res *metadatapb.CommandResult) (string, map[string]string) {
	t.Helper()
	st, _ := status.FromError(commandStatus(res))
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return "", nil
}

// wantAnnotationsConsistent checks the annotation tables against each other: every stored
// owner's usage is what its entries hold, and every private-entry counter is the number of
// the user's entries on the mailbox.
func (h *harness) wantAnnotationsConsistent() {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	usage := map[string]*metadatapb.AnnotationUsage{}
	counted := map[string]uint64{}
	charge := func(owner string, size int) {
		if usage[owner] == nil {
			usage[owner] = &metadatapb.AnnotationUsage{}
		}
		usage[owner].Entries++
		usage[owner].Bytes += uint64(size)
	}
	err := scan(v.r, []byte{prefixAnnotation}, []byte{prefixAnnotation + 1}, func(k, val []byte) (bool, error) {
		switch k[1] {
		case annotationMailbox:
			id := binary.BigEndian.Uint64(k[2:10])
			holder, name, _ := strings.Cut(string(k[10:]), "\x00")
			rec := &metadatapb.MailboxRecord{}
			if found, err := getProto(v.r, mailboxKey(id), rec); err != nil || !found {
				return false, fmt.Errorf("entry %s of mailbox %d, which does not exist (%v)", name, id, err)
			}
			owner := rec.GetAccount()
			if holder != "" {
				owner = holder
				counted[fmt.Sprintf("%s/%d", holder, id)]++
			}
			charge(owner, len(name)+len(val))
		case annotationServer:
			parts := strings.SplitN(string(k[2:]), "\x00", 3)
			owner := tenantOwner(parts[0])
			if parts[1] != "" {
				owner = parts[1]
			}
			charge(owner, len(parts[2])+len(val))
		}
		return true, nil
	})
	if err == nil {
		err = scan(v.r, []byte{prefixAnnotationIndex}, []byte{prefixAnnotationIndex + 1}, func(k, val []byte) (bool, error) {
			user, id, _ := bytes.Cut(k[1:], []byte{0})
			key := fmt.Sprintf("%s/%d", user, binary.BigEndian.Uint64(id))
			if got := decodeUint64(val); got != counted[key] || got == 0 {
				return false, fmt.Errorf("private entries of %s = %d, the entries say %d", key, got, counted[key])
			}
			delete(counted, key)
			return true, nil
		})
	}
	if err == nil && len(counted) > 0 {
		err = fmt.Errorf("private entries without a counter: %v", counted)
	}
	if err == nil {
		err = scan(v.r, []byte{prefixAnnotationUsage}, []byte{prefixAnnotationUsage + 1}, func(k, val []byte) (bool, error) {
			u := &metadatapb.AnnotationUsage{}
			if err := proto.Unmarshal(val, u); err != nil {
				return false, err
			}
			if want := usage[string(k[1:])]; !proto.Equal(u, want) {
				return false, fmt.Errorf("usage of %s = %v, the entries hold %v", k[1:], u, want)
			}
			delete(usage, string(k[1:]))
			return true, nil
		})
	}
	if err == nil && len(usage) > 0 {
		err = fmt.Errorf("entries charged to no stored usage: %v", usage)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// annotationKeys counts the keys of the annotation tables.
func (h *harness) annotationKeys() int {
	h.t.Helper()
	v := h.f.view()
	defer v.close()
	n := 0
	for _, p := range []byte{prefixAnnotation, prefixAnnotationIndex, prefixAnnotationUsage} {
		if err := scan(v.r, []byte{p}, []byte{p + 1}, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
			h.t.Fatal(err)
		}
	}
	return n
}

const (
	depth0   = metadatapb.MetadataDepth_METADATA_DEPTH_ZERO
	depth1   = metadatapb.MetadataDepth_METADATA_DEPTH_ONE
	depthInf = metadatapb.MetadataDepth_METADATA_DEPTH_INFINITY
)

// annotationFixture has alice, bob and carol in tenant example, dave in tenant other; alice
// shares Team with bob (lr) and carol (l only).
func annotationFixture(t *testing.T) *harness {
	h := newHarness(t)
	h.ok(cmdTenant("example", "example.org"))
	h.ok(cmdTenant("other", "other.org"))
	for _, a := range []string{alice, bob, carol, "dave@other.org"} {
		h.ok(cmdAccount(a))
	}
	h.ok(cmdCreateMailbox(alice, "Team"))
	h.ok(cmdSetACL(alice, alice, "Team", bob, "lr"))
	h.ok(cmdSetACL(alice, alice, "Team", carol, "l"))
	return h
}

// TestMetadataSetGet: private and shared entries of a mailbox and of the server, names
// without case, NIL for what has no value, DEPTH 0, 1 and infinity (RFC 5464 4.2.2).
func TestMetadataSetGet(t *testing.T) {
	h := annotationFixture(t)
	h.ok(cmdSetMetadata(alice, alice, "Team",
		"/private/comment", "mine", "/Shared/Comment", "for the team",
		"/shared/vendor/acme/a", "1", "/shared/vendor/acme/a/b", "2", "/shared/vendor/acme/c", ""))
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/private/comment", "/shared/comment", "/shared/nothing"},
		"/private/comment=mine /shared/comment=for the team /shared/nothing=NIL")
	// A DEPTH root that cannot hold a value is not answered NIL; children, then deeper.
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/shared/vendor/acme/c"}, "/shared/vendor/acme/c=")
	h.wantMetadata(alice, alice, "Team", depth1, []string{"/shared/vendor/acme"}, "/shared/vendor/acme/a=1 /shared/vendor/acme/c=")
	h.wantMetadata(alice, alice, "Team", depthInf, []string{"/shared/vendor/acme"}, "/shared/vendor/acme/a=1 /shared/vendor/acme/a/b=2 /shared/vendor/acme/c=")
	h.wantMetadata(alice, alice, "Team", depth1, []string{"/shared/vendor/acme/a"}, "/shared/vendor/acme/a=1 /shared/vendor/acme/a/b=2")
	// Each entry once, in the order asked; /private and /shared list everything below.
	h.wantMetadata(alice, alice, "Team", depthInf, []string{"/shared/comment", "/shared", "/private"},
		"/shared/comment=for the team /shared/vendor/acme/a=1 /shared/vendor/acme/a/b=2 /shared/vendor/acme/c= /private/comment=mine")

	// bob (lr) shares alice's shared entries and has private ones of his own.
	h.wantMetadata(bob, alice, "Team", depthInf, []string{"/private", "/shared/comment"}, "/shared/comment=for the team")
	h.ok(cmdSetMetadata(bob, alice, "Team", "/private/comment", "bob's", "/shared/comment", "bob was here"))
	h.wantMetadata(bob, alice, "Team", depth0, []string{"/private/comment", "/shared/comment"}, "/private/comment=bob's /shared/comment=bob was here")
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/private/comment", "/shared/comment"}, "/private/comment=mine /shared/comment=bob was here")

	// Server entries: shared within the tenant, private per user, none across tenants.
	h.ok(cmdSetMetadata(alice, alice, "", "/shared/comment", "tenant news", "/private/vendor/acme/x", "alice's"))
	h.wantMetadata(bob, bob, "", depthInf, []string{"/shared", "/private"}, "/shared/comment=tenant news")
	h.wantMetadata(alice, alice, "", depthInf, []string{"/private"}, "/private/vendor/acme/x=alice's")
	h.wantMetadata("dave@other.org", "dave@other.org", "", depth0, []string{"/shared/comment"}, "/shared/comment=NIL")
	if _, _, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: "dave@other.org", Account: alice, Server: true, Entries: []string{"/shared/comment"}}); status.Code(readStatus(err)) != codes.NotFound {
		t.Fatalf("dave reads alice's tenant's server entries: %v", err)
	}

	// NIL removes; removing what is not there is no error.
	h.ok(cmdSetMetadata(alice, alice, "Team", "/private/comment", "NIL", "/private/never", "NIL"))
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/private/comment"}, "/private/comment=NIL")
	// A name given twice takes its last value.
	h.ok(cmdSetMetadata(alice, alice, "Team", "/private/twice", "first", "/private/twice", "NIL", "/private/TWICE", "last"))
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/private/twice"}, "/private/twice=last")
	h.wantAnnotationsConsistent()
}

// TestMetadataMaxSize: MAXSIZE leaves larger values out and reports the largest (RFC 5464
// 4.2.1).
func TestMetadataMaxSize(t *testing.T) {
	h := annotationFixture(t)
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/a", "12345", "/private/b", "123", "/private/c", strings.Repeat("x", 2199)))
	size := uint64(4)
	got, longest, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: alice, Account: alice, Name: "INBOX",
		Entries: []string{"/private/a", "/private/nothing", "/private"}, Depth: depth1, MaxSize: &size})
	if err != nil || got != "/private/nothing=NIL /private/b=123" || longest != 2199 {
		t.Fatalf("MAXSIZE 4: %q, longest %d, %v", got, longest, err)
	}
}

// TestMetadataNames: RFC 5464 3.2 names; the command is refused whole.
func TestMetadataNames(t *testing.T) {
	h := annotationFixture(t)
	for _, name := range []string{"", "/", "comment", "/private", "/shared", "/comment", "private/comment", "/private//x", "/private/x/",
		"/private/a*", "/private/a%", "/private/\x01", "/private/é", "/shared/vendor/acme", "/private/vendor", "/" + strings.Repeat("x", 1100)} {
		h.fails(codes.InvalidArgument, cmdSetMetadata(alice, alice, "INBOX", "/private/ok", "v", name, "v"))
	}
	h.wantMetadata(alice, alice, "INBOX", depth0, []string{"/private/ok"}, "/private/ok=NIL")
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/vendor/acme/x", "v", "/shared/a b", "v"))
	for _, spec := range []string{"", "/", "/private/*", "/other"} {
		if _, _, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: alice, Account: alice, Name: "INBOX", Entries: []string{spec}}); status.Code(readStatus(err)) != codes.InvalidArgument {
			t.Fatalf("GETMETADATA %q: %v", spec, err)
		}
	}
}

// TestMetadataLimits: the limits of annotations.go, each refusal with its RFC 5464 4.3
// reason, and a refused command changes nothing.
func TestMetadataLimits(t *testing.T) {
	h := annotationFixture(t)
	big := strings.Repeat("x", MaxAnnotationValue+1)
	res := h.apply(cmdSetMetadata(alice, alice, "INBOX", "/private/ok", "v", "/private/big", big))
	if reason, md := refusal(t, res); codes.Code(res.GetCode()) != codes.ResourceExhausted || reason != ReasonMetadataMaxSize || md[ErrorInfoMaxSize] != fmt.Sprint(MaxAnnotationValue) {
		t.Fatalf("too big a value: %v %q %v", codes.Code(res.GetCode()), reason, md)
	}
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/ok", big[1:]))

	// The count, over private entries anywhere: 999 more fit, the 1001st does not.
	var pairs []string
	for i := range maxAnnotationsPerOwner - 1 {
		pairs = append(pairs, fmt.Sprintf("/private/n%d", i), "")
	}
	h.ok(cmdSetMetadata(alice, alice, "", pairs...))
	before := h.digest()
	res = h.apply(cmdSetMetadata(alice, alice, "Team", "/private/one-too-many", ""))
	if reason, _ := refusal(t, res); reason != ReasonMetadataTooMany {
		t.Fatalf("1001st entry: %v %s, reason %q", codes.Code(res.GetCode()), res.GetMessage(), reason)
	}
	// Replacing a value and removing one to make room are fine.
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/ok", "NIL", "/private/one-too-many", "now"))
	h.ok(cmdSetMetadata(alice, alice, "", "/private/n1", "again"))
	if bytes.Equal(before, h.digest()) {
		t.Fatal("commands after the refusal changed nothing")
	}
	// Shared entries are the mailbox owner's: bob's shared entry on Team counts for alice.
	h.fails(codes.ResourceExhausted, cmdSetMetadata(bob, alice, "Team", "/shared/x", "v"))
	h.ok(cmdSetMetadata(bob, alice, "Team", "/private/x", "v"))

	// The octets: bob fills his 1 MiB with 64 values of 16 KiB, less the names.
	h.ok(cmdSetMetadata(bob, bob, "INBOX", "/private/x", "NIL"))
	per := strings.Repeat("y", MaxAnnotationValue)
	pairs = nil
	var used int
	for i := 0; used+len("/private/b00")+len(per) <= maxAnnotationBytes; i++ {
		pairs = append(pairs, fmt.Sprintf("/private/b%02d", i), per)
		used += len("/private/b00") + len(per)
	}
	h.ok(cmdSetMetadata(bob, bob, "INBOX", pairs...))
	left := maxAnnotationBytes - used - len("/private/x") - 1 // bob's /private/x on Team holds 1
	res = h.apply(cmdSetMetadata(bob, bob, "INBOX", "/private/last", strings.Repeat("z", left)))
	if reason, md := refusal(t, res); reason != ReasonMetadataMaxSize || md[ErrorInfoMaxSize] != fmt.Sprint(left-len("/private/last")) {
		t.Fatalf("past the octets: %s, reason %q %v, want max_size %d", res.GetMessage(), reason, md, left-len("/private/last"))
	}
	h.ok(cmdSetMetadata(bob, bob, "INBOX", "/private/last", strings.Repeat("z", left-len("/private/last"))))
	h.wantAnnotationsConsistent()
}

// TestMetadataNoPrivate: an admin call has no private entries to set (RFC 5464 4.3
// NOPRIVATE) nor to read; /shared/admin is read-only and answered from the request.
func TestMetadataNoPrivate(t *testing.T) {
	h := annotationFixture(t)
	res := h.apply(cmdSetMetadata("", alice, "INBOX", "/shared/comment", "admin's", "/private/comment", "x"))
	if reason, _ := refusal(t, res); reason != ReasonMetadataNoPrivate {
		t.Fatalf("admin private entry: %v %s, reason %q", codes.Code(res.GetCode()), res.GetMessage(), reason)
	}
	h.ok(cmdSetMetadata("", alice, "INBOX", "/shared/comment", "admin's"))
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/comment", "alice's"))
	h.wantMetadata("", alice, "INBOX", depthInf, []string{"/shared/comment", "/private"}, "/shared/comment=admin's")

	h.fails(codes.PermissionDenied, cmdSetMetadata(alice, alice, "", "/shared/admin", "mailto:me@example.org"))
	got, _, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: alice, Account: alice, Server: true, Entries: []string{"/shared"}, Depth: depth1, ServerAdmin: "mailto:postmaster@example.org"})
	if err != nil || got != "/shared/admin=mailto:postmaster@example.org" {
		t.Fatalf("/shared/admin: %q %v", got, err)
	}
	h.wantMetadata(alice, alice, "", depth0, []string{"/shared/admin"}, "/shared/admin=NIL")
}

// TestMetadataRights: RFC 5464 3.3, l and one of r s w i p, for private and shared entries,
// to read and to write; a mailbox the user may not see is missing.
func TestMetadataRights(t *testing.T) {
	h := annotationFixture(t)
	read := func(user, owner, mailbox string) codes.Code {
		if _, _, err := h.getMetadata(&metadatapb.GetMetadataRequest{User: user, Account: owner, Name: mailbox, Entries: []string{"/private/comment"}}); err != nil {
			return status.Code(readStatus(err))
		}
		return codes.OK
	}
	for _, tc := range []struct {
		rights string
		want   codes.Code
	}{
		{"l", codes.PermissionDenied}, {"r", codes.PermissionDenied}, {"lr", codes.OK}, {"ls", codes.OK},
		{"lw", codes.OK}, {"li", codes.OK}, {"lp", codes.OK}, {"lkxtea", codes.PermissionDenied}, {"", codes.NotFound},
	} {
		h.ok(cmdSetACL(alice, alice, "Team", carol, tc.rights))
		if tc.rights == "" {
			h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteAcl{DeleteAcl: &metadatapb.DeleteAclRequest{User: alice, Account: alice, Name: "Team", Identifier: carol}}})
		}
		if got := read(carol, alice, "Team"); got != tc.want {
			t.Errorf("rights %q: read %v, want %v", tc.rights, got, tc.want)
		}
		for _, name := range []string{"/private/comment", "/shared/comment"} {
			if got := codes.Code(h.apply(cmdSetMetadata(carol, alice, "Team", name, tc.rights)).GetCode()); got != tc.want {
				t.Errorf("rights %q: set %s %v, want %v", tc.rights, name, got, tc.want)
			}
		}
	}
	// Another tenant's mailbox is missing, whatever its ACL says.
	h.ok(cmdSetACL(alice, alice, "Team", "anyone", "lr"))
	if got := read("dave@other.org", alice, "Team"); got != codes.NotFound {
		t.Fatalf("dave reads Team: %v", got)
	}
	h.fails(codes.NotFound, cmdSetMetadata("dave@other.org", alice, "Team", "/private/x", "v"))
	h.fails(codes.NotFound, cmdSetMetadata(alice, alice, "Nowhere", "/private/x", "v"))
}

// TestMetadataSpecialUse: a mailbox's /private/specialuse is its special-use attribute (RFC
// 6154 4), for every user; only the owner (or a holder of a) changes it.
func TestMetadataSpecialUse(t *testing.T) {
	h := annotationFixture(t)
	h.wantMetadata(alice, alice, "Junk", depth0, []string{"/private/specialuse"}, `/private/specialuse=\Junk`)
	h.wantMetadata(bob, alice, "Team", depth1, []string{"/private"}, "")
	h.ok(cmdSetMetadata(alice, alice, "Team", "/private/specialuse", `\archive`))
	if su := h.mustMailbox(alice, "Team").GetSpecialUse(); su != `\Archive` {
		t.Fatalf("special-use %q", su)
	}
	h.wantMetadata(bob, alice, "Team", depth1, []string{"/private"}, `/private/specialuse=\Archive`)
	h.fails(codes.PermissionDenied, cmdSetMetadata(bob, alice, "Team", "/private/specialuse", "NIL"))
	h.fails(codes.InvalidArgument, cmdSetMetadata(alice, alice, "Team", "/private/specialuse", `\Junk \Trash`))
	h.fails(codes.InvalidArgument, cmdSetMetadata(alice, alice, "Team", "/private/specialuse", `\Important`))
	h.ok(cmdSetMetadata(alice, alice, "Team", "/private/specialuse", "NIL"))
	h.wantMetadata(alice, alice, "Team", depth0, []string{"/private/specialuse"}, "/private/specialuse=NIL")
	if h.annotationKeys() != 0 {
		t.Fatal("/private/specialuse was stored as an entry")
	}
}

// TestMetadataLifetime: entries go with their mailbox (and a new one of the same name has
// none), follow RENAME, are copied by RENAME of INBOX (RFC 5464 4.1), and go with their user
// and their tenant.
func TestMetadataLifetime(t *testing.T) {
	h := annotationFixture(t)
	h.ok(cmdSetMetadata(alice, alice, "Team", "/shared/comment", "team", "/private/comment", "alice's"))
	h.ok(cmdSetMetadata(bob, alice, "Team", "/private/comment", "bob's"))
	h.ok(cmdRename(alice, "Team", "Crew"))
	h.wantMetadata(bob, alice, "Crew", depthInf, []string{"/shared", "/private"}, "/shared/comment=team /private/comment=bob's")
	h.ok(cmdDeleteMailbox(alice, "Crew"))
	h.ok(cmdCreateMailbox(alice, "Crew"))
	h.wantMetadata(alice, alice, "Crew", depthInf, []string{"/shared", "/private"}, "")
	h.wantAnnotationsConsistent()
	if n := h.annotationKeys(); n != 0 {
		t.Fatalf("%d annotation keys left after the mailbox went", n)
	}

	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/shared/comment", "inbox", "/private/comment", "mine"))
	h.ok(cmdRename(alice, "INBOX", "Old"))
	for _, mailbox := range []string{"INBOX", "Old"} {
		h.wantMetadata(alice, alice, mailbox, depthInf, []string{"/shared", "/private"}, "/shared/comment=inbox /private/comment=mine")
	}
	h.wantAnnotationsConsistent()

	// bob's private entries on alice's mailbox and on the server go with his account; his
	// shared entry on alice's mailbox is alice's and stays.
	h.ok(cmdSetACL(alice, alice, "Old", bob, "lr"))
	h.ok(cmdSetMetadata(bob, alice, "Old", "/private/comment", "bob's", "/shared/bob", "left behind"))
	h.ok(cmdSetMetadata(bob, bob, "", "/private/comment", "bob's server", "/shared/tenant", "stays"))
	h.ok(cmdSetMetadata(bob, bob, "INBOX", "/shared/comment", "bob's inbox"))
	h.ok(cmdDeleteAccount(bob))
	h.wantMetadata(alice, alice, "Old", depthInf, []string{"/shared"}, "/shared/bob=left behind /shared/comment=inbox")
	h.wantMetadata(alice, alice, "", depthInf, []string{"/shared"}, "/shared/tenant=stays")
	h.wantAnnotationsConsistent()
	h.ok(cmdAccount(bob))
	h.wantMetadata(bob, bob, "", depthInf, []string{"/private"}, "")

	// Deleting the tenant leaves no annotation behind.
	h.ok(&metadatapb.Command{Op: &metadatapb.Command_DeleteTenant{DeleteTenant: &metadatapb.DeleteTenantRequest{Name: "example", Force: true}}})
	h.wantAnnotationsConsistent()
	if n := h.annotationKeys(); n != 0 {
		t.Fatalf("%d annotation keys left after the tenant went", n)
	}
}

// TestMetadataIdempotency: a retried SetMetadata is applied once, and its request ID is not
// taken for another command.
func TestMetadataIdempotency(t *testing.T) {
	h := annotationFixture(t)
	first := cmdSetMetadata(alice, alice, "INBOX", "/private/comment", "once")
	first.RequestId = "meta-1"
	h.ok(first)
	h.ok(cmdSetMetadata(alice, alice, "INBOX", "/private/comment", "NIL"))
	retry := cmdSetMetadata(alice, alice, "INBOX", "/private/comment", "once")
	retry.RequestId = "meta-1"
	h.ok(retry)
	h.wantMetadata(alice, alice, "INBOX", depth0, []string{"/private/comment"}, "/private/comment=NIL")
	// A refusal is remembered too.
	tooBig := cmdSetMetadata(alice, alice, "INBOX", "/private/big", strings.Repeat("x", MaxAnnotationValue+1))
	tooBig.RequestId = "meta-2"
	h.fails(codes.ResourceExhausted, tooBig)
	h.fails(codes.ResourceExhausted, tooBig)
	other := cmdCreateMailbox(alice, "X")
	other.RequestId = "meta-1"
	h.fails(codes.FailedPrecondition, other)
	h.wantAnnotationsConsistent()
}

// annotationScript applies annotation commands of every kind, with refusals.
func annotationScript(h *harness) {
	h.ok(cmdTenant("example", "example.org"))
	h.ok(cmdAccount(alice))
	h.ok(cmdAccount(bob))
	h.ok(cmdCreateMailbox(alice, "Team"))
	h.ok(cmdSetACL(alice, alice, "Team", bob, "lr"))
	for i := range 10 {
		h.ok(cmdSetMetadata(alice, alice, "Team", fmt.Sprintf("/shared/e%d", i), "v", "/private/p", fmt.Sprint(i)))
		h.ok(cmdSetMetadata(bob, alice, "Team", fmt.Sprintf("/private/b%d", i), "v", "/shared/e0", fmt.Sprint(i)))
		h.ok(cmdSetMetadata(bob, bob, "", fmt.Sprintf("/private/s%d", i), "v", "/shared/s", fmt.Sprint(i)))
	}
	h.fails(codes.ResourceExhausted, cmdSetMetadata(alice, alice, "INBOX", "/private/big", strings.Repeat("x", MaxAnnotationValue+1)))
	h.ok(cmdSetMetadata(alice, alice, "Team", "/private/specialuse", `\Archive`))
	h.ok(cmdRename(alice, "INBOX", "Old"))
	h.ok(cmdDeleteAccount(bob))
	h.ok(cmdDeleteMailbox(alice, "Team"))
}

func TestMetadataDeterministicAcrossBatching(t *testing.T) {
	a := newHarness(t)
	annotationScript(a)
	a.wantAnnotationsConsistent()
	b := newHarness(t)
	for i := 0; i < len(a.log); {
		n := min(1+i%5, len(a.log)-i)
		b.f.ApplyBatch(a.log[i : i+n])
		i += n
	}
	if !bytes.Equal(a.digest(), b.digest()) {
		t.Fatal("same log, different batching: digests differ")
	}
}
