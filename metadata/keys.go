package metadata

import "encoding/binary"

// The keyspace of the state machine's Pebble store. Every key starts with one prefix
// byte naming its table; integers in keys are big-endian so that byte order is
// numeric order; strings that are followed by more components end with a 0x00
// separator (emails and mailbox names never contain NUL).
//
//	'0' "applied"                      -> uint64 last applied Raft index
//	'0' "clock"                        -> int64 log time: max command timestamp so far
//	'0' "mailbox-id"                   -> uint64 last assigned mailbox id
//	'0' "uidvalidity"                  -> uint32 last assigned UIDVALIDITY
//	'0' "request-floor"                -> int64 every request id older is pruned
//	'0' "retry-horizon"                -> uint64 index, int64 log time, int64 horizon: the
//	                                      marks of the log the retry horizon comes from
//	                                      (apply.go retryHorizon)
//	'T' tenant                         -> Tenant
//	'D' domain                         -> tenant name
//	'A' email                          -> AccountRecord
//	'E' tenant 0x00 email              -> empty (accounts of a tenant)
//	'M' mailbox id                     -> MailboxRecord
//	'N' email 0x00 mailbox name        -> mailbox id (names of an account, sorted)
//	'U' email 0x00 mailbox name        -> empty (the account's subscriptions, sorted)
//	'R' mailbox id, uid                -> MessageIndex
//	'S' mailbox id, uid                -> MessageStructure
//	'c' mailbox id, uid / 128          -> the sort-key column's records of those UIDs: per
//	                                      message its UID, then its SortColumnEntry (the
//	                                      message's sort and thread keys, sortcolumn.go)
//	'F' mailbox id, uid / 128          -> the dates projection of those UIDs' column entries:
//	                                      per message 28 bytes, UID, sort date, internal
//	                                      date, size (sortdates.go)
//	'u' mailbox id, uid / 128          -> the subject projection of those UIDs' column
//	                                      entries: per message 8 bytes, UID, subject number
//	                                      (subjectrecords.go)
//	't' mailbox id, uid / 128          -> the thread-keys projection of those UIDs' column
//	                                      entries: per message its UID, then its entry
//	                                      without addresses (and without Message-ID
//	                                      strings if numbered) (threadkeys.go)
//	'C' mailbox id, uid                -> SortColumnEntry: a message's entry in the column
//	                                      as stored before the chunks ('c'); read, removed,
//	                                      never written
//	'k' mailbox id, uid / 128          -> the listing column's records of those UIDs: per
//	                                      message its UID, then its MODSEQ and flags
//	                                      (listingcolumn.go), for a mailbox whose record
//	                                      has listing_column
//	'I' mailbox id, Message-ID         -> uint32 the id's number in the mailbox's Message-ID
//	                                      dictionary (messagenumbers.go)
//	'j' mailbox id, base subject       -> uint32 the subject's number in the mailbox's subject
//	                                      dictionary (subjectnumbers.go)
//	'X' mailbox id, modseq, uid        -> int64 log time of the expunge (tombstone, by the
//	                                      MODSEQ of the expunge: history.go)
//	'J' mailbox id, modseq             -> ChangeBatch (the changes of one command)
//	'B' blob key                       -> BlobRef
//	'O' orphaned-at, blob key          -> empty (blobs without references, by time)
//	'G' blob key                       -> empty (blobs being deleted, blobgc.go)
//	'0' "blob-epoch"                   -> uint64 ForgetBlobs commands that dropped a record
//	'Q' request id                     -> RequestRecord
//	'q' timestamp, request id          -> empty (request ids by age, for pruning)
//	'L' 'a'|'t' account or tenant      -> QuotaLimits (quota.go)
//	'W' 'a'|'t' account or tenant      -> QuotaUsage (quota.go)
//	'K' tenant 0x00 identifier 0x00 owner 0x00 mailbox name
//	                                   -> uint64 mailbox id: the ACL entries of the tenant's
//	                                      mailboxes by identifier ("anyone", "bob@x",
//	                                      "-bob@x"), so that the mailboxes shared with a
//	                                      user are a prefix scan (acl.go)
//	'Y' 'm' mailbox id, user 0x00 name -> an RFC 5464 entry's value: a mailbox's, with user ""
//	                                      for /shared entries (annotations.go)
//	'Y' 's' tenant 0x00 user 0x00 name -> a server entry's value (the server is the tenant)
//	'y' user 0x00 mailbox id           -> uint64 the user's private entries on the mailbox
//	'Z' owner                          -> AnnotationUsage charged to an account or tenant
//	'H' owner 0x00 'c' blob key        -> uint64 thread id of the owner's messages with that
//	                                      content (thread.go, RFC 8474 5.2)
//	'H' owner 0x00 'm' Message-ID      -> uint64 thread id of the message with that id, or
//	                                      of a message that refers to it
//	'H' owner 0x00 's' base subject    -> uint64 thread id that last took that base subject
//	'V' tenant                         -> DeliverySettings (delivery.go)
//	'l' tenant                         -> LdapSettings (ldap.go)
//	'a' domain 0x00 local part         -> Alias; local part "" is the catch-all (delivery.go)
//	'b' account 0x00 alias address     -> empty (the aliases naming an account)
//	'd' owner 0x00 dedup key           -> DedupRecord: an append by its dedup key (dedup.go)
//	'e' expires-at, owner 0x00 key     -> empty (dedup records by expiry, for pruning)
//	'0' "dedup-floor"                  -> int64 every dedup record expiring before is pruned
//	'v' owner 0x00 script name         -> SieveScript of an account or "tenant:NAME" (sieve.go)
//	'w' account                        -> the name of the account's active Sieve script
//	'f' account 0x00 key               -> MarkRecord: a delivery mark (marks.go)
//	'g' account 0x00 expires-at, key   -> empty (an account's marks by expiry, for eviction)
//	'h' expires-at, account 0x00 key   -> empty (all marks by expiry, for pruning)
//	'i' account                        -> uint64 the account's number of marks
//	'0' "mark-floor"                   -> int64 every mark expiring before is pruned
//	'o' 't' tenant                     -> OAuthSettings (oauth.go)
//	'o' 'i' issuer 0x00 tenant         -> empty (the tenants trusting an issuer, oauth.go)
const (
	prefixSystem         = '0'
	prefixTenant         = 'T'
	prefixDomain         = 'D'
	prefixAccount        = 'A'
	prefixTenantAcct     = 'E'
	prefixMailbox        = 'M'
	prefixMailboxName    = 'N'
	prefixSubscribed     = 'U'
	prefixMessage        = 'R'
	prefixStructure      = 'S'
	prefixSortColumn     = 'C'
	prefixSortChunk      = 'c'
	prefixSortDates      = 'F'
	prefixSubjectRecords = 'u'
	prefixListingChunk   = 'k'
	prefixThreadKeys     = 't'
	prefixMessageNumber  = 'I'
	prefixSubjectNumber  = 'j'
	prefixTombstone      = 'X'
	prefixJournal        = 'J'
	prefixBlob           = 'B'
	prefixOrphan         = 'O'
	prefixRequest        = 'Q'
	prefixRequestAge     = 'q'
	prefixACLIndex       = 'K'
	prefixPrivateSeen    = 'P'
	prefixSeenCount      = 'p'
	prefixThread         = 'H'
)

var (
	keyAppliedIndex    = []byte("0applied")
	keyClock           = []byte("0clock")
	keyLastMailboxID   = []byte("0mailbox-id")
	keyLastUIDValidity = []byte("0uidvalidity")
	keyRequestFloor    = []byte("0request-floor")
	keyRetryHorizon    = []byte("0retry-horizon")
)

func strKey(prefix byte, s string) []byte {
	return appendStrKey(make([]byte, 0, 1+len(s)), prefix, s)
}

// The appendXxxKey functions append a key to k: a txn builds the keys it writes in its
// arena (txn.alloc), a read builds its key in txn.keyBuf.

func appendStrKey(k []byte, prefix byte, s string) []byte {
	return append(append(k, prefix), s...)
}

func tenantKey(name string) []byte   { return strKey(prefixTenant, name) }
func domainKey(domain string) []byte { return strKey(prefixDomain, domain) }
func accountKey(email string) []byte { return strKey(prefixAccount, email) }
func blobKey(key string) []byte      { return strKey(prefixBlob, key) }
func requestKey(id string) []byte    { return strKey(prefixRequest, id) }
func tenantAccountsPrefix(tenant string) []byte {
	return sepKey(prefixTenantAcct, tenant, 0)
}

func tenantAccountKey(tenant, email string) []byte {
	k := make([]byte, 0, 2+len(tenant)+len(email))
	return append(append(append(append(k, prefixTenantAcct), tenant...), 0), email...)
}

// sepKey is prefix, s and extra: keys and prefixes built in one allocation.
func sepKey(prefix byte, s string, extra ...byte) []byte {
	k := make([]byte, 0, 1+len(s)+len(extra))
	return append(append(append(k, prefix), s...), extra...)
}

func mailboxKey(id uint64) []byte {
	return appendMailboxKey(make([]byte, 0, 9), id)
}

func appendMailboxKey(k []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(k, prefixMailbox), id)
}

// mailboxNamesPrefix is the prefix of all mailbox names of an account.
func mailboxNamesPrefix(email string) []byte {
	return sepKey(prefixMailboxName, email, 0)
}

func mailboxNameKey(email, name string) []byte {
	return append(mailboxNamesPrefix(email), name...)
}

// subscriptionsPrefix is the prefix of an account's subscription list.
func subscriptionsPrefix(email string) []byte {
	return append(strKey(prefixSubscribed, email), 0)
}

func subscriptionKey(email, name string) []byte {
	return append(subscriptionsPrefix(email), name...)
}

// aclIndexPrefix is the prefix of the ACL index entries of identifier in tenant.
func aclIndexPrefix(tenant, identifier string) []byte {
	k := make([]byte, 0, 3+len(tenant)+len(identifier))
	k = append(append(append(k, prefixACLIndex), tenant...), 0)
	return append(append(k, identifier...), 0)
}

func aclIndexKey(tenant, identifier, owner, name string) []byte {
	k := aclIndexPrefix(tenant, identifier)
	return append(append(append(k, owner...), 0), name...)
}

// privateSeenPrefix is the prefix of user's private \Seen records in a mailbox.
func privateSeenPrefix(mailbox uint64, user string) []byte {
	k := make([]byte, 0, 14+len(user))
	k = binary.BigEndian.AppendUint64(append(k, prefixPrivateSeen), mailbox)
	return append(append(k, user...), 0)
}

func privateSeenKey(mailbox uint64, user string, uid uint32) []byte {
	return binary.BigEndian.AppendUint32(privateSeenPrefix(mailbox, user), uid)
}

// seenCountPrefix is the prefix of the mailboxes where user has private \Seen records.
func seenCountPrefix(user string) []byte {
	return append(strKey(prefixSeenCount, user), 0)
}

func seenCountKey(user string, mailbox uint64) []byte {
	return binary.BigEndian.AppendUint64(seenCountPrefix(user), mailbox)
}

// threadIndexPrefix is the prefix of owner's thread index (thread.go).
func threadIndexPrefix(owner string) []byte {
	return sepKey(prefixThread, owner, 0)
}

func threadIndexKey(owner string, kind byte, value string) []byte {
	return appendThreadIndexKey(make([]byte, 0, 3+len(owner)+len(value)), owner, kind, value)
}

func appendThreadIndexKey(k []byte, owner string, kind byte, value string) []byte {
	k = append(append(append(k, prefixThread), owner...), 0, kind)
	return append(k, value...)
}

func threadContentKey(owner, blob string) []byte { return threadIndexKey(owner, 'c', blob) }
func threadSubjectKey(owner, base string) []byte { return threadIndexKey(owner, 's', base) }

// mailboxUIDKey is the key of per-message tables: prefix, mailbox id, uid.
func mailboxUIDKey(prefix byte, mailbox uint64, uid uint32) []byte {
	return appendMailboxUIDKey(make([]byte, 0, 13), prefix, mailbox, uid)
}

func appendMailboxUIDKey(k []byte, prefix byte, mailbox uint64, uid uint32) []byte {
	k = append(k, prefix)
	k = binary.BigEndian.AppendUint64(k, mailbox)
	return binary.BigEndian.AppendUint32(k, uid)
}

// mailboxPrefix is the prefix of one mailbox's rows in a per-mailbox table.
func mailboxPrefix(prefix byte, mailbox uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 9), prefix), mailbox)
}

// mailboxPrefixEnd is prefixEnd(mailboxPrefix(prefix, mailbox)), in one allocation.
func mailboxPrefixEnd(prefix byte, mailbox uint64) []byte {
	return successor(mailboxPrefix(prefix, mailbox))
}

func messageKey(mailbox uint64, uid uint32) []byte {
	return mailboxUIDKey(prefixMessage, mailbox, uid)
}

func structureKey(mailbox uint64, uid uint32) []byte {
	return mailboxUIDKey(prefixStructure, mailbox, uid)
}

func tombstoneKey(mailbox, modseq uint64, uid uint32) []byte {
	k := make([]byte, 0, 21)
	k = binary.BigEndian.AppendUint64(append(k, prefixTombstone), mailbox)
	k = binary.BigEndian.AppendUint64(k, modseq)
	return binary.BigEndian.AppendUint32(k, uid)
}

// modseqFromTombstoneKey and uidFromTombstoneKey take a tombstoneKey apart.
func modseqFromTombstoneKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[9:17]) }
func uidFromTombstoneKey(k []byte) uint32    { return binary.BigEndian.Uint32(k[17:21]) }

func journalKey(mailbox, modseq uint64) []byte {
	return appendJournalKey(make([]byte, 0, 17), mailbox, modseq)
}

func appendJournalKey(k []byte, mailbox, modseq uint64) []byte {
	k = binary.BigEndian.AppendUint64(append(k, prefixJournal), mailbox)
	return binary.BigEndian.AppendUint64(k, modseq)
}

func orphanKey(since int64, blob string) []byte {
	k := binary.BigEndian.AppendUint64(append(make([]byte, 0, 9+len(blob)), prefixOrphan), uint64(since))
	return append(k, blob...)
}

func requestAgeKey(ts int64, id string) []byte {
	return appendRequestAgeKey(make([]byte, 0, 9+len(id)), ts, id)
}

func appendRequestAgeKey(k []byte, ts int64, id string) []byte {
	k = binary.BigEndian.AppendUint64(append(k, prefixRequestAge), uint64(ts))
	return append(k, id...)
}

// uidFromKey returns the uid of a mailboxUIDKey.
func uidFromKey(k []byte) uint32 { return binary.BigEndian.Uint32(k[9:13]) }

// modseqFromJournalKey returns the modseq of a journalKey.
func modseqFromJournalKey(k []byte) uint64 { return binary.BigEndian.Uint64(k[9:17]) }

// prefixEnd returns the smallest key greater than every key with the given prefix.
func prefixEnd(prefix []byte) []byte {
	return successor(append([]byte(nil), prefix...))
}

// successor turns a prefix into prefixEnd of it, in place.
func successor(end []byte) []byte {
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
