package imapwire

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestParseNotify(t *testing.T) {
	newExpunge := []NotifyEvent{{Name: EventMessageNew}, {Name: EventMessageExpunge}}
	checkParses(t, []parseCase{
		{`a NOTIFY NONE`, &NotifyArgs{None: true}},
		// RFC 5465 3.1's example, with MessageNew's fetch attributes.
		{`a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))`, &NotifyArgs{
			Status: true,
			Groups: []NotifyGroup{
				{Filter: NotifySelected, Events: []NotifyEvent{
					{Name: EventMessageNew, FetchAtts: []FetchItem{{Attr: FetchUID}, {Attr: FetchBodySection, Section: &imap.FetchItemBodySection{
						Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"from", "to", "subject"}, Peek: true,
					}}}},
					{Name: EventMessageExpunge},
				}},
				{Filter: NotifySubtree, Mailboxes: []string{"Lists"}, Events: newExpunge},
			},
		}},
		{`a notify set (SELECTED-DELAYED (messagenew messageexpunge flagchange)) (Inboxes NONE) (personal (MailboxName SubscriptionChange))`, &NotifyArgs{
			Groups: []NotifyGroup{
				{Filter: NotifySelectedDelayed, Events: []NotifyEvent{{Name: EventMessageNew}, {Name: EventMessageExpunge}, {Name: EventFlagChange}}},
				{Filter: NotifyInboxes},
				{Filter: NotifyPersonal, Events: []NotifyEvent{{Name: EventMailboxName}, {Name: EventSubscriptionChange}}},
			},
		}},
		{"a NOTIFY SET (mailboxes (inbox \"Lists/IETF\" {4}\r\nWork) (MessageNew MessageExpunge)) (subscribed (MessageNew MessageExpunge))", &NotifyArgs{
			Groups: []NotifyGroup{
				{Filter: NotifyMailboxes, Mailboxes: []string{"INBOX", "Lists/IETF", "Work"}, Events: newExpunge},
				{Filter: NotifySubscribed, Events: newExpunge},
			},
		}},
		// Events the engine does not support parse; it answers them with BADEVENT.
		{`a NOTIFY SET (personal (MailboxMetadataChange X-Custom))`, &NotifyArgs{
			Groups: []NotifyGroup{{Filter: NotifyPersonal, Events: []NotifyEvent{{Name: EventMailboxMetadataChange}, {Name: "X-Custom"}}}},
		}},
	})
	checkRefused(t, []string{
		`a NOTIFY`,
		`a NOTIFY SET`,
		`a NOTIFY NONE (personal NONE)`,
		`a NOTIFY SET STATUS`,
		`a NOTIFY SET ()`,
		`a NOTIFY SET (personal ())`,
		`a NOTIFY SET (personal)`,
		`a NOTIFY SET (everything (MessageNew MessageExpunge))`,
		`a NOTIFY SET (subtree (MessageNew MessageExpunge))`,
		`a NOTIFY SET (mailboxes () (MessageNew MessageExpunge))`,
		`a NOTIFY SET (personal (MessageNew))`,                                           // RFC 5465 5: with MessageExpunge
		`a NOTIFY SET (personal (MessageExpunge))`,                                       // RFC 5465 5: with MessageNew
		`a NOTIFY SET (personal (FlagChange))`,                                           // RFC 5465 5
		`a NOTIFY SET (personal (MessageNew MessageExpunge MessageNew))`,                 // twice
		`a NOTIFY SET (selected (MailboxName))`,                                          // RFC 5465 6.1
		`a NOTIFY SET (selected NONE) (selected-delayed (MessageNew MessageExpunge))`,    // RFC 5465 6.1
		`a NOTIFY SET (selected (MessageNew (UID FOO) MessageExpunge))`,                  // unknown fetch-att
		`a NOTIFY SET (personal (MailboxName)) (personal (SubscriptionChange)) trailing`, // trailing data
		`a NOTIFY SET (personal (MailboxName))(personal (SubscriptionChange))`,           // no SP
		`a NOTIFY SET (personal (MailboxName SubscriptionChange)`,                        // unclosed
	})
}
