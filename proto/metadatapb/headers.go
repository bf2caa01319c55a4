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
