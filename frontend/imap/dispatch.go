package imap

import (
	"strconv"
	"strings"

	"github.com/strata-mail/strata/frontend/imap/imapwire"
)

// commandSpec is one row of the command table.
type commandSpec struct {
	states  connState // the states of RFC 9051 3 in which the command is allowed
	handler func(c *conn, cmd *imapwire.Command) error
	// noExpunge marks FETCH, STORE and SEARCH, whose responses must not carry EXPUNGE
	// (RFC 9051 7.5.1).
	noExpunge bool
	// seqNumbers marks the commands that name messages by sequence number, refused once
	// UIDONLY is enabled (RFC 9586 3).
	seqNumbers bool
	// answersUIDs marks the commands whose answer names messages by UID: the UID forms
	// and ESEARCH (RFC 7377 2.1). Their searches can name the session's own APPEND, COPY
	// or MOVE additions the view lacks yet, so they wait for them
	// (awaitOwnAdditionsToSearch).
	answersUIDs bool
}

const (
	anyState  = stateNotAuthenticated | stateAuthenticated | stateSelected
	authState = stateAuthenticated | stateSelected
)

// commands is the dispatch table: command name, allowed states, handler. The capability
// that announces each extension is in capabilities. Its names are exactly those of the
// parser (imapwire.CommandNames, checked by TestCommandTableMatchesParser); handlers of
// commands with a UID form tell it by Command.UID.
var commands map[string]commandSpec

func init() {
	commands = map[string]commandSpec{
		// RFC 9051 6.1: any state.
		"CAPABILITY": {states: anyState, handler: (*conn).cmdCapability},
		"NOOP":       {states: anyState, handler: (*conn).cmdNoop},
		"LOGOUT":     {states: anyState, handler: (*conn).cmdLogout},
		"ID":         {states: anyState, handler: (*conn).cmdID}, // RFC 2971 3.1
		// RFC 9051 6.2: not authenticated state.
		"STARTTLS":     {states: stateNotAuthenticated, handler: (*conn).cmdStartTLS},
		"LOGIN":        {states: stateNotAuthenticated, handler: (*conn).cmdLogin},
		"AUTHENTICATE": {states: stateNotAuthenticated, handler: (*conn).cmdAuthenticate},
		// RFC 9051 6.3: authenticated state (and selected).
		"ENABLE":      {states: authState, handler: (*conn).cmdEnable},
		"SELECT":      {states: authState, handler: (*conn).cmdSelect},
		"EXAMINE":     {states: authState, handler: (*conn).cmdSelect},
		"CREATE":      {states: authState, handler: (*conn).cmdCreate},
		"DELETE":      {states: authState, handler: (*conn).cmdDelete},
		"RENAME":      {states: authState, handler: (*conn).cmdRename},
		"SUBSCRIBE":   {states: authState, handler: (*conn).cmdSubscribe},
		"UNSUBSCRIBE": {states: authState, handler: (*conn).cmdSubscribe},
		"LIST":        {states: authState, handler: (*conn).cmdList},
		"LSUB":        {states: authState, handler: (*conn).cmdList},
		"NAMESPACE":   {states: authState, handler: (*conn).cmdNamespace},
		"STATUS":      {states: authState, handler: (*conn).cmdStatus},
		"APPEND":      {states: authState, handler: (*conn).cmdAppend},
		"IDLE":        {states: authState, handler: (*conn).cmdIdle},
		"COMPRESS":    {states: authState, handler: (*conn).cmdCompress}, // RFC 4978 3, 5: command-auth
		// RFC 8437 6: command-auth and command-select.
		"UNAUTHENTICATE": {states: authState, handler: (*conn).cmdUnauthenticate},
		// RFC 9208 4.1: QUOTA (quota.go).
		"GETQUOTA":     {states: authState, handler: (*conn).cmdGetQuota},
		"GETQUOTAROOT": {states: authState, handler: (*conn).cmdGetQuotaRoot},
		"SETQUOTA":     {states: authState, handler: (*conn).cmdSetQuota},
		// RFC 4314 3: ACL (acl.go).
		"SETACL":     {states: authState, handler: (*conn).cmdSetACL},
		"DELETEACL":  {states: authState, handler: (*conn).cmdDeleteACL},
		"GETACL":     {states: authState, handler: (*conn).cmdGetACL},
		"LISTRIGHTS": {states: authState, handler: (*conn).cmdListRights},
		"MYRIGHTS":   {states: authState, handler: (*conn).cmdMyRights},
		// RFC 5464 4: METADATA (metadata.go).
		"GETMETADATA": {states: authState, handler: (*conn).cmdGetMetadata},
		"SETMETADATA": {states: authState, handler: (*conn).cmdSetMetadata},
		// RFC 5465 3.1: NOTIFY (notify.go).
		"NOTIFY": {states: authState, handler: (*conn).cmdNotify},
		// RFC 9051 6.4: selected state.
		"CHECK":       {states: stateSelected, handler: (*conn).cmdNoop},
		"CLOSE":       {states: stateSelected, handler: (*conn).cmdClose},
		"UNSELECT":    {states: stateSelected, handler: (*conn).cmdUnselect},
		"EXPUNGE":     {states: stateSelected, handler: (*conn).cmdExpunge},
		"UID EXPUNGE": {states: stateSelected, handler: (*conn).cmdExpunge, answersUIDs: true},
		"SEARCH":      {states: stateSelected, handler: (*conn).cmdSearch, noExpunge: true, seqNumbers: true},
		"UID SEARCH":  {states: stateSelected, handler: (*conn).cmdSearch, answersUIDs: true},
		// RFC 5256: SORT and THREAD (sort.go); RFC 9051 7.5.1 holds EXPUNGE back as for SEARCH.
		"SORT":       {states: stateSelected, handler: (*conn).cmdSort, noExpunge: true, seqNumbers: true},
		"UID SORT":   {states: stateSelected, handler: (*conn).cmdSort, answersUIDs: true},
		"THREAD":     {states: stateSelected, handler: (*conn).cmdThread, noExpunge: true, seqNumbers: true},
		"UID THREAD": {states: stateSelected, handler: (*conn).cmdThread, answersUIDs: true},
		"FETCH":      {states: stateSelected, handler: (*conn).cmdFetch, noExpunge: true, seqNumbers: true},
		"UID FETCH":  {states: stateSelected, handler: (*conn).cmdFetch, answersUIDs: true},
		"STORE":      {states: stateSelected, handler: (*conn).cmdStore, noExpunge: true, seqNumbers: true},
		"UID STORE":  {states: stateSelected, handler: (*conn).cmdStore, answersUIDs: true},
		"COPY":       {states: stateSelected, handler: (*conn).cmdCopy, seqNumbers: true},
		"UID COPY":   {states: stateSelected, handler: (*conn).cmdCopy, answersUIDs: true},
		"MOVE":       {states: stateSelected, handler: (*conn).cmdCopy, seqNumbers: true},
		"UID MOVE":   {states: stateSelected, handler: (*conn).cmdCopy, answersUIDs: true},
		// RFC 7377 2: ESEARCH (multisearch.go), also in the authenticated state (2.4). It
		// answers in UIDs (2.1), so EXPUNGE may go out with it as with UID SEARCH (RFC 9051
		// 7.5.1).
		"ESEARCH": {states: authState, handler: (*conn).cmdMultiSearch, answersUIDs: true},
		// RFC 5267 4.3.5: CANCELUPDATE (context.go), command-select.
		"CANCELUPDATE": {states: stateSelected, handler: (*conn).cmdCancelUpdate},
		// RFC 8508: REPLACE (append.go).
		"REPLACE":     {states: stateSelected, handler: (*conn).cmdReplace, seqNumbers: true},
		"UID REPLACE": {states: stateSelected, handler: (*conn).cmdReplace, answersUIDs: true},
	}
}

// capabilities returns the CAPABILITY list for the connection's state (RFC 9051 6.1.1,
// 7.2.2). Each entry is implemented by the commands above.
func (c *conn) capabilities() string {
	caps := []string{
		"IMAP4rev1",             // RFC 3501
		"IMAP4rev2",             // RFC 9051
		"LITERAL+",              // RFC 7888; not LITERAL- beside it (RFC 7888 5), whose 4096-octet bound LITERAL+ lifts
		"ENABLE",                // RFC 5161
		"IDLE",                  // RFC 2177
		"NAMESPACE",             // RFC 2342
		"UIDPLUS",               // RFC 4315
		"MOVE",                  // RFC 6851
		"UNSELECT",              // RFC 3691
		"CHILDREN",              // RFC 3348
		"SPECIAL-USE",           // RFC 6154
		"CREATE-SPECIAL-USE",    // RFC 6154 3
		"LIST-EXTENDED",         // RFC 5258
		"LIST-STATUS",           // RFC 5819
		"MULTIAPPEND",           // RFC 3502
		"STATUS=SIZE",           // RFC 8438
		"ID",                    // RFC 2971
		"UTF8=ACCEPT",           // RFC 6855
		"ESEARCH",               // RFC 4731
		"SEARCHRES",             // RFC 5182
		"MULTISEARCH",           // RFC 7377 (multisearch.go)
		"SORT",                  // RFC 5256 3
		"SORT=DISPLAY",          // RFC 5957
		"THREAD=ORDEREDSUBJECT", // RFC 5256 4
		"THREAD=REFERENCES",     // RFC 5256 4
		"THREAD=REFS",           // draft-ietf-morg-inthread, as Dovecot
		"ESORT",                 // RFC 5267 3
		"CONTEXT=SEARCH",        // RFC 5267 4 (context.go): UPDATE, CONTEXT and PARTIAL in SEARCH
		"CONTEXT=SORT",          // RFC 5267 4: the same in SORT
		// Not PARTIAL: RFC 9394 3 also asks SEARCH RETURN PARTIAL and FETCH, which Strata
		// lacks; SORT RETURN (PARTIAL ...) is answered anyway.
		"WITHIN",            // RFC 5032
		"BINARY",            // RFC 3516
		"QUOTA",             // RFC 9208 3
		"QUOTA=RES-STORAGE", // RFC 9208 5.1
		"QUOTA=RES-MESSAGE", // RFC 9208 5.2
		"ACL",               // RFC 4314 2
		"RIGHTS=texk",       // RFC 4314 2.1: the rights beyond RFC 2086's
		"LIST-MYRIGHTS",     // RFC 8440
		"PREVIEW",           // RFC 8970
		"REPLACE",           // RFC 8508
		"UIDONLY",           // RFC 9586
		"SAVEDATE",          // RFC 8514
		"CONDSTORE",         // RFC 7162 3.1
		"QRESYNC",           // RFC 7162 3.2
		"METADATA",          // RFC 5464 1: server and mailbox entries
		"METADATA-SERVER",   // RFC 5464 1: server entries
		"OBJECTID",          // RFC 8474 3
		"NOTIFY",            // RFC 5465
		"APPENDLIMIT=" + strconv.FormatInt(c.srv.cfg.MaxMessageSize, 10), // RFC 7889
	}
	if c.srv.cfg.SearchIndex || c.account.GetSearchIndex() {
		// RFC 6203 2 (fuzzy.go). SEARCH is a command of the selected state, so a session
		// whose login learned that the metadata nodes index (Config.SearchIndex) announces
		// it from then on; the OK of the login carries it (RFC 9051 6.2.3).
		caps = append(caps, "SEARCH=FUZZY")
	}
	if c.state&authState != 0 {
		// RFC 4978 3: COMPRESS is a command of the authenticated state (command-auth), so
		// it is announced there, as Dovecot does.
		if !c.srv.cfg.DisableCompress {
			caps = append(caps, "COMPRESS=DEFLATE")
		}
		if c.account.GetTenantAdmin() {
			// RFC 9208 1: a server that implements SETQUOTA returns QUOTASET; here only a
			// tenant admin's session can use it (quota.go).
			caps = append(caps, "QUOTASET")
		}
		if !c.srv.cfg.DisableUnauthenticate {
			// RFC 8437 3: servers may announce it only once it can be used.
			caps = append(caps, "UNAUTHENTICATE")
		}
	}
	if c.state == stateNotAuthenticated {
		if c.srv.cfg.TLS != nil && !c.tlsActive() {
			caps = append(caps, "STARTTLS") // RFC 9051 6.2.1
		}
		caps = append(caps, "SASL-IR") // RFC 4959
		// RFC 9051 6.2.2: AUTH= for each mechanism this connection offers (frontend/sasl):
		// SCRAM everywhere, -PLUS over TLS, PLAIN (and OAUTHBEARER and XOAUTH2 on frontends
		// that verify tokens) where a password may travel.
		for _, m := range c.saslConn().Mechanisms() {
			caps = append(caps, "AUTH="+m)
		}
		if !c.plaintextAuthAllowed() {
			caps = append(caps, "LOGINDISABLED") // RFC 9051 6.2.3
		}
	}
	return strings.Join(caps, " ")
}
