package metadatapb

// Names both sides of the Metadata API use outside its messages (DESIGN.md "Boundaries worth
// keeping": frontends reach metadata through proto/ only). Hand-written; protoc leaves this
// file alone.
const (
	// AppliedIndexHeader is the gRPC header and trailer key of the serving node's applied
	// Raft index.
	AppliedIndexHeader = "strata-applied-index"
	// MinIndexHeader is the gRPC request header key of a session-consistent read: the
	// Raft index the serving node must have applied.
	MinIndexHeader = "strata-min-index"
	// NotLeaderReason is the errdetails.ErrorInfo reason of a not-leader error; its
	// metadata holds "leader_id" and "leader_addr" (empty when unknown).
	NotLeaderReason = "NOT_LEADER"
)

// The errdetails.ErrorInfo reasons of refused Sieve script commands (metadata.proto "Sieve
// scripts"), which ManageSieve answers with RFC 5804 response codes.
const (
	// SieveActiveReason: DeleteSieveScript of the active script (RFC 5804 2.10 ACTIVE).
	SieveActiveReason = "SIEVE_ACTIVE"
	// SieveMaxSizeReason: a script over the size limit (RFC 5804 1.3 QUOTA/MAXSIZE).
	SieveMaxSizeReason = "SIEVE_MAXSIZE"
	// SieveMaxScriptsReason: one script more than the owner may have (RFC 5804 1.3
	// QUOTA/MAXSCRIPTS).
	SieveMaxScriptsReason = "SIEVE_MAXSCRIPTS"
)

// The errdetails.ErrorInfo reasons of a login the metadata leader refuses without checking
// its password (metadata/authguard.go), with codes.ResourceExhausted and an
// errdetails.RetryInfo saying when to try again. The ErrorInfo metadata key "scope" names
// the counter that refused it: "pair" (the account from this address), "ip" (this address,
// whatever the account) or "account" (the account from untrusted addresses).
const (
	// AuthThrottledReason: too soon after the last failures; the frontend waits the
	// RetryInfo delay and asks again, holding its client.
	AuthThrottledReason = "AUTH_THROTTLED"
	// AuthLockedReason: the pair or the address is locked out until the RetryInfo delay
	// has passed; the frontend refuses the login.
	AuthLockedReason = "AUTH_LOCKED"
)

// The subject projection of the sort-key column (SortColumnChunk.subject_records,
// metadata/subjectrecords.go): records of SubjectRecordLen bytes, the UID then the subject
// number, little-endian; UnnumberedSubject stands for an entry without a subject number.
const (
	SubjectRecordLen  = 8
	UnnumberedSubject = 0xFFFFFFFF
)
