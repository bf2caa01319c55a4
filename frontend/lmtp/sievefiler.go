package lmtp

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mail/strata/frontend/outbound"
	"github.com/strata-mail/strata/frontend/sievestate"
	"github.com/strata-mail/strata/proto/metadatapb"
	"github.com/strata-mail/strata/sieve"
	"github.com/strata-mail/strata/spam"
)

// errSpamUnavailable refuses a transaction rspamd gave no verdict for with fail-closed:
// RFC 3463 X.7.1 with a 4yz code, so that the MTA retries.
var errSpamUnavailable = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Spam scanner unavailable, try again later"}

// SieveFiler runs the recipient account's Sieve scripts (the tenant's "before" scripts, the
// account's active script, the tenant's "after" scripts; GetActiveSieveScript) and files by
// their result. An account without any script is filed by Default. See sieve/doc.go for
// the interpreter.
//
//   - keep and fileinto are the targets, with their flags; fileinto :create creates the
//     mailbox (RFC 5490 3.2), :specialuse files into the mailbox with that special use
//     when there is one (RFC 8579 4). The implicit keep honours the tenant's spam policy
//     as Default does, like Dovecot's sieve_before spam script.
//   - discard stores nothing and answers 250 (RFC 5228 4.4).
//   - reject and ereject refuse the recipient with 550 5.7.1 and the reason: LMTP can
//     refuse at protocol level (RFC 5429 2.1).
//   - redirect and vacation go to Outbound after the store succeeded; without Outbound
//     they are logged and counted as dropped, and delivery goes on.
//   - Duplicate marks (RFC 7352 3) are recorded after the store, vacation marks (RFC 5230
//     4.2) after the response is queued.
//   - A runtime error (a limit, a conflict) keeps the message in INBOX (RFC 5228 2.10.6)
//     and is logged.
//
// With Spam set, each message is scanned by rspamd once for all recipients; with
// fail-closed, a scanner that gives no verdict refuses every recipient with 451 4.7.1.
// Without it the MTA's verdict header fields are the spam score.
type SieveFiler struct {
	Metadata metadatapb.MetadataClient
	Default  DefaultFiler
	Spam     *spam.Checker   // nil: the MTA's verdict fields
	Outbound *outbound.Queue // nil: redirect and vacation are dropped
	Policy   outbound.Policy
	Hostname string
	Limits   sieve.Limits
	Logger   *slog.Logger

	cache   *programCache
	once    sync.Once
	dropped atomic.Int64
}

// Dropped counts the redirect and vacation actions dropped for want of Outbound.
func (f *SieveFiler) Dropped() int64 { return f.dropped.Load() }

func (f *SieveFiler) init() {
	f.once.Do(func() {
		f.cache = newProgramCache(programCacheSize)
		if f.Default.Metadata == nil {
			f.Default.Metadata = f.Metadata
		}
		if f.Hostname == "" {
			f.Hostname, _ = os.Hostname()
		}
		if f.Logger == nil {
			f.Logger = slog.Default()
		}
	})
}

// Prepare implements Preparer: it looks up the scripts of the recipients' accounts, all at
// once, while the message is parsed. The scripts are read anew for every message, so a
// script changed (ManageSieve, strata sieve) before a transaction's DATA ended runs for it;
// an account whose lookup failed is looked up again by File.
func (f *SieveFiler) Prepare(ctx context.Context, rcpts []Recipient) any {
	var accounts []string
	seen := map[string]bool{}
	for _, rcpt := range rcpts {
		if !seen[rcpt.Account] {
			seen[rcpt.Account] = true
			accounts = append(accounts, rcpt.Account)
		}
	}
	found := make([]*metadatapb.GetActiveSieveScriptResponse, len(accounts))
	parallel(len(accounts), maxConcurrentAppends, func(i int) {
		found[i], _ = f.Metadata.GetActiveSieveScript(ctx, &metadatapb.GetActiveSieveScriptRequest{Account: accounts[i]})
	})
	scripts := activeScripts{}
	for i, account := range accounts {
		if found[i] != nil {
			scripts[account] = found[i]
		}
	}
	return scripts
}

// activeScripts are the scripts Prepare found, by account.
type activeScripts map[string]*metadatapb.GetActiveSieveScriptResponse

// File implements Filer.
func (f *SieveFiler) File(ctx context.Context, rcpt Recipient, msg *Message) ([]Target, error) {
	f.init()
	score, err := f.spamScore(ctx, rcpt, msg)
	if err != nil {
		return nil, err
	}
	scripts, _ := msg.Prepared.(activeScripts)
	active := scripts[rcpt.Account]
	if active == nil {
		active, err = f.Metadata.GetActiveSieveScript(ctx, &metadatapb.GetActiveSieveScriptRequest{Account: rcpt.Account})
		if err != nil {
			return nil, fmt.Errorf("active sieve script of %s: %w", rcpt.Account, err)
		}
	}
	var rn sieve.Runner
	for _, s := range active.GetBefore() {
		if p := f.compile(s); p != nil {
			rn.Before = append(rn.Before, p)
		}
	}
	if s := active.GetScript(); s != nil {
		rn.Personal = f.compile(s)
	}
	for _, s := range active.GetAfter() {
		if p := f.compile(s); p != nil {
			rn.After = append(rn.After, p)
		}
	}
	if len(rn.Before) == 0 && rn.Personal == nil && len(rn.After) == 0 {
		return f.Default.File(ctx, rcpt, msg)
	}
	raw, err := msg.Raw()
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	smsg, err := sieve.NewRawMessage(raw)
	if err != nil {
		return nil, fmt.Errorf("parse message for sieve: %w", err)
	}
	tracker := sievestate.New(f.Metadata, rcpt.Account)
	in := sieve.Input{
		Message:             smsg,
		Envelope:            sieve.Envelope{From: msg.From, To: rcpt.Account, OrigTo: rcpt.Address},
		Now:                 msg.Now,
		SubaddressDelimiter: rcpt.Settings.GetSubaddressDelimiter(),
		Environment:         map[string]string{"host": f.Hostname, "domain": domainOf(rcpt.Account), "phase": "during"},
		Spam:                score,
		Mailboxes:           mailboxes{md: f.Metadata, account: rcpt.Account},
		Vacations:           tracker,
		Duplicates:          tracker,
		Scripts:             scriptLoader{f: f, account: rcpt.Account, tenant: rcpt.Tenant},
	}
	if !strings.EqualFold(rcpt.Address, rcpt.Account) {
		in.UserAddresses = []string{rcpt.Address}
	}
	res, err := rn.Execute(ctx, in)
	if err != nil {
		// RFC 5228 2.10.6: the result holds the implicit keep (and the actions of the
		// scripts before the failing one).
		f.Logger.Warn("lmtp: sieve runtime error, keeping the message in INBOX", "account", rcpt.Account, "err", err)
	}
	return f.apply(ctx, rcpt, msg, res, err != nil)
}

// apply turns a result into targets and registers its side effects.
func (f *SieveFiler) apply(ctx context.Context, rcpt Recipient, msg *Message, res *sieve.Result, failed bool) ([]Target, error) {
	var targets []Target
	var sends []sieve.Action
	for _, a := range res.Actions {
		switch a.Kind {
		case sieve.ActionReject, sieve.ActionEreject:
			// RFC 5429 2.1: refuse at protocol level; RFC 3463 X.7.1.
			return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: rejectText(a.Reason)}
		case sieve.ActionKeep:
			targets = append(targets, Target{Mailbox: "INBOX", Flags: a.Flags})
		case sieve.ActionFileInto:
			name, err := f.fileintoTarget(ctx, rcpt.Account, a)
			if err != nil {
				return nil, err
			}
			targets = append(targets, Target{Mailbox: name, Flags: a.Flags})
		case sieve.ActionRedirect, sieve.ActionVacation:
			sends = append(sends, a)
		}
	}
	if res.ImplicitKeep {
		if failed {
			targets = append(targets, Target{Mailbox: "INBOX", Flags: res.ImplicitKeepFlags})
		} else {
			// The implicit keep goes where the tenant's spam policy and the subaddress
			// put it, as without a script.
			keep, err := f.Default.File(ctx, rcpt, msg)
			if err != nil {
				return nil, err
			}
			for i := range keep {
				keep[i].Flags = append(append([]string(nil), res.ImplicitKeepFlags...), keep[i].Flags...)
			}
			targets = append(targets, keep...)
		}
	}
	if len(res.HeaderEdits) > 0 {
		// RFC 5293: the edits apply to the message as every keep and fileinto of this run
		// stores it (deliver.go stores that message as a body of its own).
		for i := range targets {
			targets[i].HeaderEdits = res.HeaderEdits
		}
	}
	marks := res.DuplicateMarks
	if len(marks) > 0 || len(sends) > 0 {
		msg.OnDelivered(rcpt, func(ctx context.Context) {
			tracker := sievestate.New(f.Metadata, rcpt.Account)
			if len(marks) > 0 {
				if err := tracker.RecordDuplicates(ctx, marks, msg.Now); err != nil {
					f.Logger.Warn("lmtp: record sieve duplicate marks", "account", rcpt.Account, "err", err)
				}
			}
			if len(sends) > 0 {
				f.send(ctx, rcpt, msg, sends, tracker)
			}
		})
	}
	return targets, nil
}

// send queues the redirects and vacation responses, then records the vacation marks.
func (f *SieveFiler) send(ctx context.Context, rcpt Recipient, msg *Message, actions []sieve.Action, tracker *sievestate.Tracker) {
	if f.Outbound == nil {
		f.dropped.Add(int64(len(actions)))
		f.Logger.Warn("lmtp: no outbound relay, sieve actions dropped", "account", rcpt.Account, "actions", len(actions))
		return
	}
	original, err := msg.Original()
	if err != nil {
		f.Logger.Warn("lmtp: read message for outbound", "account", rcpt.Account, "err", err)
		return
	}
	d := outbound.Delivery{Sender: msg.From, Recipient: rcpt.Account, Message: original, Hostname: f.Hostname, Now: msg.Now}
	if err := f.Outbound.EnqueueActions(ctx, d, actions, f.Policy); err != nil {
		f.Logger.Warn("lmtp: queue sieve actions", "account", rcpt.Account, "err", err)
		return
	}
	for _, a := range actions {
		// RFC 5230 4.2: remember the response so that the period is honoured.
		if a.Kind == sieve.ActionVacation && a.Vacation != nil && a.Vacation.Send {
			if err := tracker.RecordVacation(ctx, a.Vacation, msg.Now); err != nil {
				f.Logger.Warn("lmtp: record vacation mark", "account", rcpt.Account, "err", err)
			}
		}
	}
}

// rejectText is a reject reason fit for one reply line: control characters become spaces,
// and non-ASCII characters "?" (RFC 5321 4.2: reply text is US-ASCII; RFC 5429 2.1 lets
// the reason be shortened or changed to fit the protocol).
func rejectText(reason string) string {
	reason = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return ' '
		case r > 0x7f:
			return '?'
		}
		return r
	}, reason)
	reason = strings.Join(strings.Fields(reason), " ")
	if reason == "" {
		return "Message rejected"
	}
	if len(reason) > 400 {
		reason = reason[:400]
	}
	return reason
}

// fileintoTarget resolves a fileinto: :specialuse (RFC 8579 4) names the mailbox with that
// use when one exists; :create (RFC 5490 3.2) creates a missing mailbox.
func (f *SieveFiler) fileintoTarget(ctx context.Context, account string, a sieve.Action) (string, error) {
	if a.SpecialUse != "" {
		name, err := specialUseMailbox(ctx, f.Metadata, account, a.SpecialUse)
		if err != nil {
			return "", err
		}
		if name != "" {
			return name, nil
		}
	}
	if a.Create {
		_, err := f.Metadata.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: account, Name: a.Mailbox})
		if status.Code(err) == codes.NotFound {
			// RFC 8579 4: with :create a missing mailbox is created with the special use.
			_, err = f.Metadata.CreateMailbox(ctx, &metadatapb.CreateMailboxRequest{RequestId: newID(), Account: account, Name: a.Mailbox, SpecialUse: a.SpecialUse})
			if status.Code(err) == codes.AlreadyExists {
				err = nil
			}
			if err != nil {
				// A name that cannot be created falls back to INBOX when stored.
				f.Logger.Info("lmtp: sieve fileinto :create failed", "account", account, "mailbox", a.Mailbox, "err", err)
				return a.Mailbox, nil
			}
		} else if err != nil {
			return "", fmt.Errorf("look up mailbox %q: %w", a.Mailbox, err)
		}
	}
	return a.Mailbox, nil
}

// specialUseMailbox is the name of the account's selectable mailbox with the special use
// (RFC 6154 2, RFC 8579 :specialuse), or "".
func specialUseMailbox(ctx context.Context, md metadatapb.MetadataClient, account, use string) (string, error) {
	resp, err := md.ListMailboxes(ctx, &metadatapb.ListMailboxesRequest{Account: account})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return "", nil
		}
		return "", fmt.Errorf("list mailboxes of %s: %w", account, err)
	}
	for _, mb := range resp.GetMailboxes() {
		for _, u := range strings.Fields(mb.GetSpecialUse()) {
			if strings.EqualFold(u, use) && !mb.GetNoselect() {
				return mb.GetName(), nil
			}
		}
	}
	return "", nil
}

// spamScore is the message's spam score for spamtest (RFC 5235): rspamd's verdict, scanned
// once per message, with Spam set; else the MTA's verdict fields. The rspamd verdict also
// replaces msg.Verdict, for the spam policy.
func (f *SieveFiler) spamScore(ctx context.Context, rcpt Recipient, msg *Message) (sieve.Score, error) {
	if f.Spam != nil {
		if !msg.scanned {
			msg.scanned = true
			// The message as the MTA handed it, streamed from the spool.
			v, err := f.Spam.Check(ctx, msg.original(), spam.Envelope{From: msg.From, Rcpt: msg.Recipients})
			if err == nil && v.Tested {
				msg.Verdict = Verdict{Spam: v.Spam(), Score: v.Score, HasScore: true}
				msg.score = v.SieveScore()
			}
			msg.scanErr = err
		}
		if msg.scanErr != nil {
			if errors.Is(msg.scanErr, spam.ErrUnavailable) {
				f.Logger.Warn("lmtp: spam scanner unavailable", "err", msg.scanErr)
				return sieve.Score{}, errSpamUnavailable
			}
			return sieve.Score{}, msg.scanErr
		}
		if msg.score.Tested {
			return msg.score, nil
		}
	}
	v := msg.Verdict
	switch {
	case v.HasScore:
		// The fields carry no reject score: the tenant's spam_reject_score, else rspamd's
		// default reject score.
		reject := rcpt.Settings.GetSpamRejectScore()
		if reject <= 0 {
			reject = defaultRejectScore
		}
		return spam.ScoreOf(v.Score, reject, false), nil
	case v.Spam:
		return spam.ScoreOf(1, 0, true), nil
	}
	return sieve.Score{}, nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// compile returns the program of a stored script, from the cache when its content was
// compiled before. A script that does not compile (it was checked at upload, so only a
// change of the interpreter does that) is logged and left out.
func (f *SieveFiler) compile(s *metadatapb.SieveScript) *sieve.Program {
	p, err := f.program(s.GetName(), s.GetContent())
	if err != nil {
		f.Logger.Warn("lmtp: sieve script does not compile, skipped", "account", s.GetAccount(), "tenant", s.GetTenant(), "script", s.GetName(), "err", err)
		return nil
	}
	return p
}

func (f *SieveFiler) program(name string, content []byte) (*sieve.Program, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(content)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if p := f.cache.get(key); p != nil {
		return p, nil
	}
	p, err := sieve.Compile(name, content, sieve.Options{Limits: f.Limits})
	if err != nil {
		return nil, err
	}
	f.cache.put(key, p)
	return p, nil
}

// scriptLoader finds included scripts (RFC 6609 3.2): :personal among the account's,
// :global among the tenant's.
type scriptLoader struct {
	f               *SieveFiler
	account, tenant string
}

func (l scriptLoader) LoadScript(ctx context.Context, loc sieve.ScriptLocation, name string) (*sieve.Program, error) {
	req := &metadatapb.GetSieveScriptRequest{Account: l.account, Name: name}
	if loc == sieve.Global {
		req = &metadatapb.GetSieveScriptRequest{Tenant: l.tenant, Name: name}
	}
	s, err := l.f.Metadata.GetSieveScript(ctx, req)
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%s script %q: %w", loc, name, sieve.ErrScriptNotFound)
	}
	if err != nil {
		return nil, err
	}
	return l.f.program(s.GetName(), s.GetContent())
}

// mailboxes answers the mailbox tests (RFC 5490 3.1, RFC 8579 3) from the metadata service.
type mailboxes struct {
	md      metadatapb.MetadataClient
	account string
}

func (m mailboxes) MailboxExists(ctx context.Context, name string) (bool, error) {
	mb, err := m.md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: m.account, Name: name})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !mb.GetNoselect(), nil
}

func (m mailboxes) SpecialUseExists(ctx context.Context, mailbox, use string) (bool, error) {
	if mailbox == "" {
		name, err := specialUseMailbox(ctx, m.md, m.account, use)
		return name != "", err
	}
	mb, err := m.md.GetMailbox(ctx, &metadatapb.GetMailboxRequest{Account: m.account, Name: mailbox})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, u := range strings.Fields(mb.GetSpecialUse()) {
		if strings.EqualFold(u, use) {
			return true, nil
		}
	}
	return false, nil
}

// defaultRejectScore is rspamd's default score of the reject action, the top of the
// spamtest scale for a score read from the MTA's verdict fields.
const defaultRejectScore = 15

// programCacheSize bounds the compiled programs a frontend keeps.
const programCacheSize = 1024

// programCache is a bounded LRU of compiled programs by the hash of name and content.
type programCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recent first
	items map[[sha256.Size]byte]*list.Element
}

type cacheEntry struct {
	key [sha256.Size]byte
	p   *sieve.Program
}

func newProgramCache(max int) *programCache {
	return &programCache{max: max, order: list.New(), items: map[[sha256.Size]byte]*list.Element{}}
}

func (c *programCache) get(key [sha256.Size]byte) *sieve.Program {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[key]; e != nil {
		c.order.MoveToFront(e)
		return e.Value.(*cacheEntry).p
	}
	return nil
}

func (c *programCache) put(key [sha256.Size]byte, p *sieve.Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[key]; e != nil {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, p: p})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
