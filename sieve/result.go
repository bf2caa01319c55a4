package sieve

import (
	"strconv"
	"strings"
	"time"
)

// ActionKind names what an action does.
type ActionKind string

const (
	ActionKeep     ActionKind = "keep"     // RFC 5228 4.3
	ActionFileInto ActionKind = "fileinto" // RFC 5228 4.1
	ActionRedirect ActionKind = "redirect" // RFC 5228 4.2
	ActionDiscard  ActionKind = "discard"  // RFC 5228 4.4
	ActionReject   ActionKind = "reject"   // RFC 5429 2.2
	ActionEreject  ActionKind = "ereject"  // RFC 5429 2.1
	ActionVacation ActionKind = "vacation" // RFC 5230
)

// Action is one thing the script asked for, in script order.
type Action struct {
	Kind ActionKind
	// Mailbox is the target of keep ("INBOX") and fileinto.
	Mailbox string
	// Flags are the IMAP flags to store with keep and fileinto (RFC 5232 5).
	Flags []string
	// Create is fileinto :create (RFC 5490 3.2).
	Create bool
	// SpecialUse is fileinto :specialuse (RFC 8579 4): a mailbox with this
	// attribute is the target when one exists, Mailbox otherwise.
	SpecialUse string
	// Copy is :copy on fileinto or redirect (RFC 3894): it keeps the
	// implicit keep.
	Copy bool
	// Address is the redirect target.
	Address string
	// Reason is the reject or ereject text.
	Reason string
	// flagsGiven is set when keep or fileinto named its flags with :flags
	// rather than taking the imap4flags internal variable (for Runner).
	flagsGiven bool
	// Vacation is the reply a vacation action built.
	Vacation *VacationReply
	// Script and Pos say which command made the action.
	Script string
	Pos    Pos
}

// VacationReply is a vacation response ready to send (RFC 5230 4, 5).
type VacationReply struct {
	To        string // the envelope sender of the message (RFC 5230 4.6)
	From      string // :from, else the recipient's address
	Subject   string // :subject, else "Auto: " + the original subject (RFC 5230 4.6)
	Body      string // the reason
	MIME      bool   // :mime: Body is a MIME entity (RFC 5230 4.4)
	Handle    string // :handle, else derived from the arguments (RFC 5230 4.2)
	Seconds   int64  // the response period after clamping to the site limits
	InReplyTo string // the original Message-ID (RFC 5230 5.7)
	// ScriptSubject and ScriptFrom are :subject and :from as written, "" when absent.
	ScriptSubject string
	ScriptFrom    string
	// Send is false when the response-tracking rules (RFC 5230 4.5) say no
	// response goes out; SuppressedBy says which.
	Send         bool
	SuppressedBy string
}

// HeaderEdit is one editheader change (RFC 5293), in execution order. The
// caller replays the edits on the stored message.
type HeaderEdit struct {
	// Delete is false for addheader, true for deleteheader.
	Delete bool
	Name   string
	Value  string // addheader: the value, RFC 2047-encoded when not ASCII
	Last   bool   // addheader :last appends, else the field goes first
	// Occurrence is, for a deletion, which field of that name (1-based,
	// counted in the header as edited so far) was removed.
	Occurrence int
}

// DuplicateMark is a unique ID the duplicate test saw; the caller records it
// once the delivery succeeded (RFC 7352 3).
type DuplicateMark struct {
	Handle  string
	ID      string
	Expires time.Time
}

// Result is what a script decided.
type Result struct {
	Actions []Action
	// ImplicitKeep is set when the message is to be stored in INBOX because
	// no action canceled the implicit keep (RFC 5228 2.10.2), or because
	// execution failed (RFC 5228 2.10.6).
	ImplicitKeep      bool
	ImplicitKeepFlags []string
	HeaderEdits       []HeaderEdit
	DuplicateMarks    []DuplicateMark
	// Err is the runtime error Execute returned, if any.
	Err error
}

func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

func (a *Action) stores() bool { return a.Kind == ActionKeep || a.Kind == ActionFileInto }

func (a *Action) rejects() bool { return a.Kind == ActionReject || a.Kind == ActionEreject }

// addAction appends an action, merging duplicates and refusing conflicts
// as RFC 5228 2.10.3 and Pigeonhole do.
func (r *run) addAction(n *node, a Action) error {
	a.Script, a.Pos = r.prog.name, n.pos
	actions := r.res.Actions
	for i := range actions {
		prev := &actions[i]
		switch {
		case a.rejects() && prev.rejects():
			// RFC 5429 2.1: at most one reject or ereject.
			return r.errorf(n, "duplicate reject/ereject action")
		case a.rejects() && (prev.stores() || prev.Kind == ActionRedirect || prev.Kind == ActionVacation),
			prev.rejects() && (a.stores() || a.Kind == ActionRedirect || a.Kind == ActionVacation):
			// RFC 5429 2.1, 2.2: reject is incompatible with delivering
			// actions; RFC 5230 4.7: and with vacation.
			return r.errorf(n, "%s conflicts with %s", a.Kind, prev.Kind)
		case a.Kind == ActionVacation && prev.Kind == ActionVacation:
			return r.errorf(n, "duplicate vacation action")
		}
	}
	if a.Kind == ActionKeep {
		r.explicitKeep = true
	}
	if !a.Copy && a.Kind != ActionVacation {
		r.canceled = true // RFC 5228 2.10.2, RFC 3894 3: :copy keeps the implicit keep
	}
	for i := range actions {
		prev := &actions[i]
		// RFC 5228 2.10.3: the same mailbox or address twice is one action.
		switch {
		case a.stores() && prev.stores() && sameMailbox(a.Mailbox, prev.Mailbox):
			prev.Flags, prev.flagsGiven, prev.Create = a.Flags, a.flagsGiven, prev.Create || a.Create
			prev.Copy = prev.Copy && a.Copy
			if a.SpecialUse != "" {
				prev.SpecialUse = a.SpecialUse
			}
			return nil
		case a.Kind == ActionRedirect && prev.Kind == ActionRedirect && strings.EqualFold(a.Address, prev.Address):
			prev.Copy = prev.Copy && a.Copy
			return nil
		case a.Kind == ActionDiscard && prev.Kind == ActionDiscard:
			return nil
		}
	}
	if len(actions) >= r.limits.MaxActions {
		return r.limitError(r.prog, n.pos, "more than %d actions", r.limits.MaxActions)
	}
	if a.Kind == ActionRedirect {
		count := 1
		for _, prev := range actions {
			if prev.Kind == ActionRedirect {
				count++
			}
		}
		if count > r.limits.MaxRedirects {
			return r.limitError(r.prog, n.pos, "more than %d redirects", r.limits.MaxRedirects)
		}
	}
	r.res.Actions = append(actions, a)
	return nil
}

func sameMailbox(a, b string) bool { return a == b || isInbox(a) && isInbox(b) }

// Outcome renders the result as the normalized lines of the differential
// contract (sieve/testdata/differential/FORMAT.md): one line per action in
// order, then the implicit keep; "error" alone when execution failed. A
// store into INBOX reads "keep" whether keep or fileinto made it, as
// sieve-test prints both the same way. A vacation whose reply the
// response rules suppress (RFC 5230 4.2, 4.5; Send false) is left out, as
// sieve-test -e leaves out the replies it does not send: the outcome lists
// what leaves the server.
func (r *Result) Outcome() []string {
	if r.Err != nil {
		return []string{"error"}
	}
	var out []string
	for _, a := range r.Actions {
		var line string
		switch a.Kind {
		case ActionKeep, ActionFileInto:
			line = "fileinto " + a.Mailbox
			if isInbox(a.Mailbox) {
				line = "keep"
			}
			line += flagsSuffix(a.Flags)
		case ActionRedirect:
			line = "redirect " + a.Address
		case ActionReject, ActionEreject:
			line = "reject " + escapeLines(a.Reason)
		case ActionDiscard:
			line = "discard"
		case ActionVacation:
			v := a.Vacation
			if !v.Send {
				continue
			}
			line = "vacation subject=" + escapeLines(v.ScriptSubject) + " seconds=" + strconv.FormatInt(v.Seconds, 10)
			if v.ScriptFrom != "" {
				line += " from=" + v.ScriptFrom
			}
		}
		out = append(out, line)
	}
	if r.ImplicitKeep {
		out = append(out, "implicit-keep"+flagsSuffix(r.ImplicitKeepFlags))
	}
	return out
}

// flagsSuffix renders flags the way sieve-test prints them: the system
// flags first in a fixed order, then the keywords as added; the flags are a
// set (RFC 5232 3), so the order carries nothing.
func flagsSuffix(flags []string) string {
	if len(flags) == 0 {
		return ""
	}
	var ordered []string
	for _, sys := range systemFlags {
		if containsFold(flags, sys) {
			ordered = append(ordered, sys)
		}
	}
	for _, f := range flags {
		if !containsFold(systemFlags, f) {
			ordered = append(ordered, f)
		}
	}
	return " flags=" + strings.ToLower(strings.Join(ordered, " "))
}

func escapeLines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", `\n`)
}
