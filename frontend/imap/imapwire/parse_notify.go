package imapwire

import "strings"

// NotifyArgs are the arguments of NOTIFY (RFC 5465 3.1, 8).
type NotifyArgs struct {
	// None is NOTIFY NONE: no notifications at all.
	None bool
	// Status is NOTIFY SET STATUS: a STATUS response for each mailbox with message events
	// before the tagged OK (RFC 5465 3.1).
	Status bool
	Groups []NotifyGroup
}

// NotifyFilter is a mailbox specifier of an event group (RFC 5465 6).
type NotifyFilter int

// The mailbox specifiers.
const (
	NotifySelected        NotifyFilter = iota + 1 // RFC 5465 6.1
	NotifySelectedDelayed                         // RFC 5465 6.1
	NotifyInboxes                                 // RFC 5465 6.3
	NotifyPersonal                                // RFC 5465 6.2
	NotifySubscribed                              // RFC 5465 6.4
	NotifySubtree                                 // RFC 5465 6.5
	NotifyMailboxes                               // RFC 5465 6.6
)

// The event names of RFC 5465 5, as the parser writes them whatever case they came in.
const (
	EventMessageNew            = "MessageNew"
	EventMessageExpunge        = "MessageExpunge"
	EventFlagChange            = "FlagChange"
	EventAnnotationChange      = "AnnotationChange"
	EventMailboxName           = "MailboxName"
	EventSubscriptionChange    = "SubscriptionChange"
	EventMailboxMetadataChange = "MailboxMetadataChange"
	EventServerMetadataChange  = "ServerMetadataChange"
)

// knownEvents maps the upper-case event names of RFC 5465 8 to their spelling; message
// events are those allowed with SELECTED and SELECTED-DELAYED (6.1).
var knownEvents = map[string]struct {
	name    string
	message bool
}{
	"MESSAGENEW":            {EventMessageNew, true},
	"MESSAGEEXPUNGE":        {EventMessageExpunge, true},
	"FLAGCHANGE":            {EventFlagChange, true},
	"ANNOTATIONCHANGE":      {EventAnnotationChange, true},
	"MAILBOXNAME":           {EventMailboxName, false},
	"SUBSCRIPTIONCHANGE":    {EventSubscriptionChange, false},
	"MAILBOXMETADATACHANGE": {EventMailboxMetadataChange, false},
	"SERVERMETADATACHANGE":  {EventServerMetadataChange, false},
}

// NotifyGroup is one event group: a mailbox specifier and the events asked for it.
type NotifyGroup struct {
	Filter NotifyFilter
	// Mailboxes are the names of SUBTREE and MAILBOXES, as sent.
	Mailboxes []string
	// Events is empty for NONE (RFC 5465 5: the group's mailboxes send nothing).
	Events []NotifyEvent
}

// NotifyEvent is one event of a group. Name is one of the Event* constants, or an
// event-ext atom as sent, which the engine refuses with BADEVENT.
type NotifyEvent struct {
	Name string
	// FetchAtts are MessageNew's fetch attributes (RFC 5465 5.2); nil when not given.
	FetchAtts []FetchItem
}

// Has reports whether the group asks for the event name.
func (g *NotifyGroup) Has(name string) bool {
	for _, ev := range g.Events {
		if ev.Name == name {
			return true
		}
	}
	return false
}

// notifyArgs parses RFC 5465 8:
//
//	notify          = "NOTIFY" SP (notify-set / notify-none)
//	notify-set      = "SET" [status-indicator] SP event-groups
//	status-indicator = SP "STATUS"
//	notify-none     = "NONE"
//	event-groups    = event-group *(SP event-group)
//	event-group     = "(" filter-mailboxes SP events ")"
//	filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" /
//	                  "subscribed" / ("subtree" SP one-or-more-mailbox) /
//	                  ("mailboxes" SP one-or-more-mailbox)
//	one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
//	events          = ("(" event *(SP event) ")") / "NONE"
//
// with the rules the grammar's comments and sections 5 and 6.1 add, which a command that
// breaks gets BAD for: MessageNew and MessageExpunge go together, FlagChange and
// AnnotationChange need both, SELECTED and SELECTED-DELAYED take message events only and
// only one of them may appear.
func (p *parser) notifyArgs() *NotifyArgs {
	p.sp()
	args := &NotifyArgs{}
	switch strings.ToUpper(p.atom()) {
	case "NONE":
		args.None = true
		return args
	case "SET":
	default:
		p.errorf("expected SET or NONE")
		return args
	}
	if p.takeFold(" STATUS") {
		args.Status = true
	}
	selected := false
	for p.ok() && (len(args.Groups) == 0 || p.take(' ')) {
		if len(args.Groups) == 0 {
			p.sp()
		}
		g := p.notifyGroup()
		if g.Filter == NotifySelected || g.Filter == NotifySelectedDelayed {
			if selected {
				p.errorf("SELECTED and SELECTED-DELAYED may appear once in all") // RFC 5465 6.1
			}
			selected = true
		}
		args.Groups = append(args.Groups, g)
	}
	return args
}

// notifyFilters maps the upper-case mailbox specifiers to their filters.
var notifyFilters = map[string]NotifyFilter{
	"SELECTED": NotifySelected, "SELECTED-DELAYED": NotifySelectedDelayed, "INBOXES": NotifyInboxes,
	"PERSONAL": NotifyPersonal, "SUBSCRIBED": NotifySubscribed, "SUBTREE": NotifySubtree, "MAILBOXES": NotifyMailboxes,
}

// notifyGroup parses one event-group and checks its events.
func (p *parser) notifyGroup() NotifyGroup {
	var g NotifyGroup
	p.expect('(')
	name := strings.ToUpper(p.atom())
	filter, known := notifyFilters[name]
	if p.ok() && !known {
		p.errorf("unknown mailbox specifier %q", name)
	}
	g.Filter = filter
	if filter == NotifySubtree || filter == NotifyMailboxes {
		p.sp()
		g.Mailboxes = p.oneOrMoreMailbox()
	}
	p.sp()
	if p.take('(') {
		for p.ok() && (len(g.Events) == 0 || !p.take(')')) {
			if len(g.Events) > 0 {
				p.sp()
			}
			g.Events = append(g.Events, p.notifyEvent())
		}
	} else if !p.takeFold("NONE") {
		p.errorf("expected an event list or NONE")
	}
	p.expect(')')
	if p.ok() {
		p.checkNotifyGroup(&g)
	}
	return g
}

// oneOrMoreMailbox parses RFC 5465 8's one-or-more-mailbox = mailbox / "(" mailbox *(SP
// mailbox) ")".
func (p *parser) oneOrMoreMailbox() []string {
	if !p.take('(') {
		return []string{p.mailbox()}
	}
	var names []string
	for p.ok() && (len(names) == 0 || !p.take(')')) {
		if len(names) > 0 {
			p.sp()
		}
		names = append(names, p.mailbox())
	}
	return names
}

// notifyEvent parses one event: a name, MessageNew with its fetch attributes.
func (p *parser) notifyEvent() NotifyEvent {
	raw := p.atom()
	known, isKnown := knownEvents[strings.ToUpper(raw)]
	if !isKnown {
		return NotifyEvent{Name: raw} // event-ext: refused with BADEVENT by the engine
	}
	ev := NotifyEvent{Name: known.name}
	if ev.Name == EventMessageNew && p.peek() == ' ' && p.pos+1 < len(p.b) && p.b[p.pos+1] == '(' {
		p.sp()
		p.expect('(')
		for p.ok() && (len(ev.FetchAtts) == 0 || !p.take(')')) {
			if len(ev.FetchAtts) > 0 {
				p.sp()
			}
			ev.FetchAtts = append(ev.FetchAtts, p.fetchAtt())
		}
	}
	return ev
}

// checkNotifyGroup applies RFC 5465 5 and 6.1 to a parsed group.
func (p *parser) checkNotifyGroup(g *NotifyGroup) {
	seen := map[string]bool{}
	for _, ev := range g.Events {
		if seen[ev.Name] {
			p.errorf("event %s given twice", ev.Name)
			return
		}
		seen[ev.Name] = true
		known, isKnown := knownEvents[strings.ToUpper(ev.Name)]
		if isKnown && !known.message && (g.Filter == NotifySelected || g.Filter == NotifySelectedDelayed) {
			p.errorf("SELECTED and SELECTED-DELAYED take message events only, not %s", ev.Name) // RFC 5465 6.1
			return
		}
	}
	if seen[EventMessageNew] != seen[EventMessageExpunge] {
		p.errorf("MessageNew and MessageExpunge go together") // RFC 5465 5
		return
	}
	if (seen[EventFlagChange] || seen[EventAnnotationChange]) && !seen[EventMessageNew] {
		p.errorf("FlagChange and AnnotationChange need MessageNew and MessageExpunge") // RFC 5465 5
	}
}
